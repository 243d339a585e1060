-- The `top_up_list` read model: the credits each merchant offers its customers to buy.
CREATE TABLE top_up_list
(
    id                 text PRIMARY KEY,
    tenant             text        NOT NULL,
    feature_slug       text        NOT NULL,
    name               text        NOT NULL,
    credits_per_unit   bigint      NOT NULL,
    unit_amount_cents  bigint      NOT NULL,
    currency           text        NOT NULL,
    -- Empty: offered on every plan in its currency.
    plan_ids           jsonb       NOT NULL DEFAULT '[]',
    expires_after_days integer,
    max_quantity       bigint      NOT NULL,
    created_at         timestamptz NOT NULL
);
CREATE INDEX top_up_list_tenant ON top_up_list (tenant, id);
