-- Test clocks: a test-mode tenant's "now" runs `offset_us` microseconds ahead of the wall
-- clock once the merchant moved it forward (POST /v1/test-clock/advance). Live tenants never
-- have a row.
CREATE TABLE test_clocks
(
    tenant      text PRIMARY KEY,
    offset_us   bigint      NOT NULL CHECK (offset_us >= 0),
    advanced_at timestamptz NOT NULL DEFAULT now()
);
