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
    -- No CHECK (>= 0) here: the ledger's version keeps it, and a racing append that would
    -- break such a check would fail as an error, not as the conflict that is retried.
    remaining_amount bigint      NOT NULL,
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

-- The scheduler records the expiries that have passed.
CREATE INDEX credit_grants_unrecorded_expiry ON credit_grants (tenant, expires_at)
    WHERE ended IS NULL AND expires_at IS NOT NULL;

-- The ledger of a customer's credits, as the transactions endpoint lists it: each grant,
-- usage, expiry and revocation, in the order they happened. `amount` is signed: what a grant
-- added, what a usage drew from credits or an ending forfeited, negative.
CREATE TABLE credit_transactions
(
    id            text PRIMARY KEY,
    tenant        text        NOT NULL,
    customer_id   text        NOT NULL,
    feature_slug  text        NOT NULL,
    kind          text        NOT NULL CHECK (kind IN ('grant', 'usage', 'expiry', 'revocation')),
    amount        bigint      NOT NULL,
    grant_id      text,
    usage_id      text,
    quantity      bigint,
    overage_units bigint,
    -- A usage's: the caller's key, and the balance it left (its answer, for a repeat).
    idempotency_key text,
    remaining_after bigint,
    at            timestamptz NOT NULL,
    -- Orders transactions of one instant as their ledger recorded them.
    ledger_sequence bigint    NOT NULL,
    entry         integer     NOT NULL
);

CREATE INDEX credit_transactions_customer
    ON credit_transactions (tenant, customer_id, at, ledger_sequence, entry);

-- A usage's idempotency key is recorded once per ledger: a repeat's append breaks this claim,
-- and is answered with the first usage (app/src/credits.rs).
CREATE UNIQUE INDEX credit_transactions_usage_key
    ON credit_transactions (tenant, customer_id, feature_slug, idempotency_key)
    WHERE kind = 'usage';
