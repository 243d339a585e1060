-- Read models of plans, subscriptions, payment methods and organizations. Each is projected
-- in the append statement (inline), so its unique indexes guard rules that span aggregates:
-- an append that breaks one fails whole and the command is refused.

CREATE TABLE plan_list
(
    id               text PRIMARY KEY,
    tenant           text        NOT NULL,
    price_id         text        NOT NULL,
    name             text        NOT NULL,
    description      text,
    currency         text        NOT NULL,
    pricing_data     jsonb       NOT NULL,
    credit_allowance bigint,
    created_at       timestamptz NOT NULL
);
CREATE INDEX plan_list_tenant ON plan_list (tenant, id);

CREATE TABLE subscription_list
(
    id                   text PRIMARY KEY,
    tenant               text        NOT NULL,
    customer_id          text        NOT NULL,
    plan_id              text        NOT NULL,
    payment_method_id    text,
    status               text        NOT NULL,
    grace_period_ends_at timestamptz,
    started_at           timestamptz NOT NULL,
    canceled_at          timestamptz,
    updated_at           timestamptz NOT NULL
);
-- A customer has at most one subscription that is not canceled: the portal shows one, and a
-- payment method follows one subscription at a time.
CREATE UNIQUE INDEX subscription_list_one_live
    ON subscription_list (customer_id) WHERE status <> 'canceled';
CREATE INDEX subscription_list_customer ON subscription_list (customer_id, id);

CREATE TABLE payment_method_list
(
    id                     text PRIMARY KEY,
    tenant                 text        NOT NULL,
    customer_id            text        NOT NULL,
    provider               text        NOT NULL,
    payment_type           text        NOT NULL,
    card_brand             text,
    card_last_four         text,
    card_exp_month         bigint,
    card_exp_year          bigint,
    provider_reference     text,
    linked_subscription_id text,
    created_at             timestamptz NOT NULL,
    removed_at             timestamptz
);
CREATE INDEX payment_method_list_customer ON payment_method_list (customer_id, id);
-- A provider's payment method is added once, however often its webhook is delivered.
CREATE UNIQUE INDEX payment_method_list_provider_reference
    ON payment_method_list (tenant, provider, provider_reference)
    WHERE provider_reference IS NOT NULL AND removed_at IS NULL;

CREATE TABLE organization_list
(
    id                  text PRIMARY KEY,
    tenant              text        NOT NULL,
    name                text        NOT NULL,
    primary_customer_id text        NOT NULL,
    created_at          timestamptz NOT NULL
);

-- A customer belongs to at most one organization: the primary key refuses a second.
CREATE TABLE organization_members
(
    customer_id     text PRIMARY KEY,
    tenant          text        NOT NULL,
    organization_id text        NOT NULL,
    role            text        NOT NULL,
    joined_at       timestamptz NOT NULL
);
CREATE INDEX organization_members_organization
    ON organization_members (organization_id, joined_at, customer_id);
