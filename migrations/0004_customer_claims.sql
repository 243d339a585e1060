-- The write side's guard for uniqueness: a live customer claims its email (lowercased) and
-- its external id here, in the same transaction that appends its events. Exclusive claims
-- are unique per tenant, so of two racing appends one fails. A `shared` claim is an email
-- the merchant set with dangerouslyAllowSameEmailForDifferentCustomers.
CREATE TABLE customer_claims
(
    customer_id text    NOT NULL,
    kind        text    NOT NULL CHECK (kind IN ('email', 'external_id')),
    tenant      text    NOT NULL,
    value       text    NOT NULL,
    shared      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (customer_id, kind)
);

CREATE UNIQUE INDEX customer_claims_email_exclusive
    ON customer_claims (tenant, value) WHERE kind = 'email' AND NOT shared;
CREATE UNIQUE INDEX customer_claims_external_id_exclusive
    ON customer_claims (tenant, value) WHERE kind = 'external_id' AND NOT shared;
-- Shared claims are rare: this index only holds them, so it costs the common append nothing.
-- A lookup of every holder of a value reads it and the exclusive index above.
CREATE INDEX customer_claims_shared ON customer_claims (tenant, kind, value) WHERE shared;
