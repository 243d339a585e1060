-- The portal_overview read model: one document per live customer with everything the
-- customer portal's overview shows. A catch-up projection (see projection_checkpoints).
CREATE TABLE portal_overview
(
    customer_id          text PRIMARY KEY,
    tenant               text  NOT NULL,
    external_customer_id text,
    document             jsonb NOT NULL
);

-- The portal finds its customer by the merchant's own id.
CREATE INDEX portal_overview_external_id ON portal_overview (tenant, external_customer_id);
