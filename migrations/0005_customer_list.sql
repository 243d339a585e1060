-- The customer_list read model: one row per customer, deleted ones kept with deleted_at.
CREATE TABLE customer_list
(
    id                    text PRIMARY KEY,
    tenant                text        NOT NULL,
    merchant_id           text        NOT NULL,
    email                 text        NOT NULL,
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

-- Lists walk a tenant's live customers in id order. Filters by email or external id find
-- their customers through customer_claims, which indexes exactly the live ones already.
CREATE INDEX customer_list_live ON customer_list (tenant, id) WHERE deleted_at IS NULL;
