-- The payment-aggregate read model: per customer and currency, the sum of succeeded charges
-- less refunds and the count of succeeded charges. Projected inline with each settlement.
CREATE TABLE payment_totals
(
    tenant               text        NOT NULL,
    customer_id          text        NOT NULL,
    currency             text        NOT NULL,
    total_payments_cents bigint      NOT NULL,
    payment_count        bigint      NOT NULL,
    last_payment_at      timestamptz NOT NULL,
    PRIMARY KEY (customer_id, currency)
);
CREATE INDEX payment_totals_tenant ON payment_totals (tenant, customer_id);
