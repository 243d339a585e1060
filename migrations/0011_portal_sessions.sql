-- Portal sessions: a merchant lets one of its customers into the portal for an hour. The
-- token is shown once; like secret keys, only its SHA-256 is kept.
CREATE TABLE portal_sessions
(
    id                   text PRIMARY KEY,
    token_hash           bytea       NOT NULL UNIQUE,
    tenant               text        NOT NULL,
    customer_id          text        NOT NULL,
    external_customer_id text        NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    expires_at           timestamptz NOT NULL
);
