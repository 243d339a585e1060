-- Invoices and payments, projected inline (they commit with their events).

CREATE TABLE invoice_list
(
    id                  text PRIMARY KEY,
    tenant              text        NOT NULL,
    customer_id         text        NOT NULL,
    subscription_id     text,
    number              text,
    status              text        NOT NULL,
    document_type       text        NOT NULL,
    currency            text        NOT NULL,
    lines               jsonb       NOT NULL,
    subtotal_cents      bigint      NOT NULL,
    total_amount_cents  bigint      NOT NULL,
    amount_paid_cents   bigint      NOT NULL DEFAULT 0,
    credited_cents      bigint      NOT NULL DEFAULT 0,
    issue_date          timestamptz,
    due_date            timestamptz,
    paid_date           timestamptz,
    period_start        timestamptz,
    period_end          timestamptz,
    original_invoice_id text,
    adjustments         jsonb       NOT NULL DEFAULT '[]',
    payment_ids         jsonb       NOT NULL DEFAULT '[]',
    pdf_sha256          text,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX invoice_list_tenant ON invoice_list (tenant, id);
CREATE INDEX invoice_list_customer ON invoice_list (customer_id, id);
-- Each (subscription, period) is invoiced once: two renewals racing, or one run twice, cannot
-- both append a standard invoice for it.
CREATE UNIQUE INDEX invoice_list_one_per_period
    ON invoice_list (subscription_id, period_start)
    WHERE subscription_id IS NOT NULL AND document_type = 'standard';
-- Open invoices of subscriptions, for the scheduler's retries.
CREATE INDEX invoice_list_open ON invoice_list (subscription_id)
    WHERE status = 'issued' AND document_type = 'standard';

-- Gapless document numbers per tenant and series (the number's prefix: INV, CAN, CN). A number
-- is claimed by the event that issues its document, in the same statement: unique, and only
-- after its predecessor (the foreign key; deferred so that a rebuild may replay documents in
-- any order within its one transaction).
CREATE TABLE document_numbers
(
    tenant     text    NOT NULL,
    series     text    NOT NULL,
    seq        integer NOT NULL CHECK (seq > 0),
    previous   integer GENERATED ALWAYS AS (nullif(seq - 1, 0)) STORED,
    number     text    NOT NULL,
    invoice_id text    NOT NULL UNIQUE,
    issued_at  timestamptz NOT NULL,
    CONSTRAINT document_numbers_unique PRIMARY KEY (tenant, series, seq),
    CONSTRAINT document_numbers_follow FOREIGN KEY (tenant, series, previous)
        REFERENCES document_numbers (tenant, series, seq) DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE payment_list
(
    id                  text PRIMARY KEY,
    tenant              text        NOT NULL,
    customer_id         text        NOT NULL,
    invoice_id          text,
    payment_method_id   text,
    provider            text        NOT NULL,
    kind                text        NOT NULL,
    amount_cents        bigint      NOT NULL,
    currency            text        NOT NULL,
    status              text        NOT NULL,
    error_message       text,
    error_code          text,
    provider_reference  text,
    refunded_payment_id text,
    created_at          timestamptz NOT NULL,
    settled_at          timestamptz
);
CREATE INDEX payment_list_tenant ON payment_list (tenant, id);
CREATE INDEX payment_list_customer ON payment_list (customer_id, id);
CREATE INDEX payment_list_invoice ON payment_list (invoice_id, id);
-- Pending payments, which the scheduler settles after a crash.
CREATE INDEX payment_list_pending ON payment_list (created_at) WHERE status = 'pending';
