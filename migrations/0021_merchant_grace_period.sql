-- How long a merchant's past-due subscriptions have to pay before they are canceled.
ALTER TABLE merchants
    ADD COLUMN grace_period_days integer NOT NULL DEFAULT 7
        CHECK (grace_period_days BETWEEN 1 AND 60);
