-- Responses kept for Idempotency-Key retries. A row without a status is a request still in
-- flight; request_hash covers method, path and body, so a key reused for another request is
-- told apart from a retry.
CREATE TABLE idempotency_keys
(
    tenant        text        NOT NULL,
    key           text        NOT NULL,
    request_hash  bytea       NOT NULL,
    status_code   integer,
    response_body bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, key)
);

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
