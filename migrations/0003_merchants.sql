-- Merchants and their secret keys. Keys are high-entropy random strings, so a plain SHA-256
-- is the right hash: it cannot be brute-forced and it lets a key be found by its hash.
CREATE TABLE merchants
(
    id         text PRIMARY KEY,
    name       text        NOT NULL,
    provider   text        NOT NULL DEFAULT 'sandbox' CHECK (provider IN ('sandbox', 'stripe', 'dodo')),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys
(
    id          text PRIMARY KEY,
    merchant_id text        NOT NULL REFERENCES merchants (id),
    mode        text        NOT NULL CHECK (mode IN ('test', 'live')),
    secret_hash bytea       NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
