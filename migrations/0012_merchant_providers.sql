-- Payment providers per merchant: the provider's credentials and API base URL, and what
-- billstream remembers of each provider's objects (sandbox setup intents, the provider's
-- customer and subscription ids, the webhook events already processed).

-- The credentials are the merchant's own provider keys and are stored as given: billstream
-- must present them to the provider. Production would encrypt them at rest (a KMS-held key,
-- envelope encryption); they never leave the service in an answer or a log line.
ALTER TABLE merchants
    ADD COLUMN stripe_secret_key      text,
    ADD COLUMN stripe_publishable_key text,
    ADD COLUMN stripe_webhook_secret  text,
    ADD COLUMN stripe_base_url        text NOT NULL DEFAULT 'https://api.stripe.com',
    ADD COLUMN dodo_api_key           text,
    ADD COLUMN dodo_webhook_secret    text,
    ADD COLUMN dodo_base_url          text NOT NULL DEFAULT 'https://live.dodopayments.com',
    -- Dodo keys and hosts are per mode and its events do not say which: the merchant's
    -- setting names the billstream mode (tenant) its Dodo account serves.
    ADD COLUMN dodo_mode              text NOT NULL DEFAULT 'live' CHECK (dodo_mode IN ('test', 'live'));

-- The built-in sandbox's setup intents. The payment method id is chosen when the intent is
-- made, so confirming can add at most one payment method however often it is retried.
CREATE TABLE sandbox_setup_intents
(
    id                text PRIMARY KEY,
    tenant            text        NOT NULL,
    customer_id       text        NOT NULL,
    status            text        NOT NULL CHECK (status IN ('requires_payment_method', 'succeeded')),
    payment_method_id text        NOT NULL UNIQUE,
    created_at        timestamptz NOT NULL DEFAULT now(),
    confirmed_at      timestamptz
);
CREATE INDEX sandbox_setup_intents_customer ON sandbox_setup_intents (tenant, customer_id);

-- A billstream customer's customer object at a provider (Stripe's `cus_…`), made once.
CREATE TABLE provider_customers
(
    tenant               text        NOT NULL,
    customer_id          text        NOT NULL,
    provider             text        NOT NULL CHECK (provider IN ('stripe', 'dodo')),
    provider_customer_id text        NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, customer_id, provider)
);

-- The provider's subscription behind a billstream subscription (Dodo's `sub_…`), learnt from
-- the provider's webhook whose metadata names ours.
CREATE TABLE provider_subscriptions
(
    tenant                   text        NOT NULL,
    subscription_id          text        NOT NULL,
    provider                 text        NOT NULL CHECK (provider IN ('stripe', 'dodo')),
    provider_subscription_id text        NOT NULL,
    created_at               timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, subscription_id, provider),
    UNIQUE (tenant, provider, provider_subscription_id)
);

-- Webhook events processed, by the provider's own id: a redelivery is answered 200 and changes
-- nothing. The row is written after the event's effects; a redelivery racing the first one is
-- stopped by payment_method_list_provider_reference, which adds a provider's payment method once.
CREATE TABLE provider_webhook_events
(
    provider     text        NOT NULL CHECK (provider IN ('stripe', 'dodo')),
    merchant_id  text        NOT NULL,
    event_id     text        NOT NULL,
    event_type   text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, merchant_id, event_id)
);
