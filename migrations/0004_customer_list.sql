-- The customer_list read model: one row per customer, deleted ones kept with deleted_at.
-- It is projected in the statement that appends the customer's events, so it doubles as the
-- write side's uniqueness guard: its partial unique indexes refuse an append that would give
-- two live customers of a tenant one email or one external id.
CREATE TABLE customer_list
(
    id                    text PRIMARY KEY,
    tenant                text        NOT NULL,
    merchant_id           text        NOT NULL,
    email                 text        NOT NULL,
    -- The email as uniqueness compares it: lowercase.
    email_key             text        NOT NULL,
    -- Set with dangerouslyAllowSameEmailForDifferentCustomers: exempt from the unique index.
    email_shared          boolean     NOT NULL DEFAULT false,
    name                  text,
    external_customer_id  text,
    billing_address_line1 text,
    billing_address_line2 text,
    billing_city          text,
    billing_postal_code   text,
    billing_country       text,
    tax_id                text,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    deleted_at            timestamptz,
    version               bigint      NOT NULL
);

-- Lists walk a tenant's live customers in id order.
CREATE INDEX customer_list_live ON customer_list (tenant, id) WHERE deleted_at IS NULL;

CREATE UNIQUE INDEX customer_list_email_exclusive
    ON customer_list (tenant, email_key) WHERE deleted_at IS NULL AND NOT email_shared;
-- Shared emails are rare: this index only holds them, so it costs the common append nothing.
CREATE INDEX customer_list_email_shared
    ON customer_list (tenant, email_key) WHERE deleted_at IS NULL AND email_shared;
CREATE UNIQUE INDEX customer_list_external_id
    ON customer_list (tenant, external_customer_id)
    WHERE deleted_at IS NULL AND external_customer_id IS NOT NULL;
