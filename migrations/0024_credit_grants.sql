-- The credit_balances read model: each grant of credits, with what is left of it. A balance
-- is read from these rows at the tenant's now, not stored: an expiry counts from its
-- expiresAt on, before the scheduler records it, and a stored balance would be wrong between.
CREATE TABLE credit_grants
(
    id               text PRIMARY KEY,
    tenant           text        NOT NULL,
    customer_id      text        NOT NULL,
    feature_slug     text        NOT NULL,
    source           text        NOT NULL,
    priority         integer     NOT NULL,
    initial_amount   bigint      NOT NULL CHECK (initial_amount > 0),
    -- Never overdrawn, here too.
    remaining_amount bigint      NOT NULL CHECK (remaining_amount >= 0),
    starts_at        timestamptz NOT NULL,
    expires_at       timestamptz,
    -- 'expired' or 'revoked' once recorded.
    ended            text CHECK (ended IN ('expired', 'revoked')),
    ended_at         timestamptz,
    reference_code   text,
    notes            text,
    created_at       timestamptz NOT NULL
);

CREATE INDEX credit_grants_customer ON credit_grants (tenant, customer_id, feature_slug, created_at);
