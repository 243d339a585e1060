-- Billing periods: plans bill monthly or yearly, maybe after a trial; subscriptions have seats,
-- a current period, and may end at its end.
ALTER TABLE plan_list
    ADD COLUMN interval   text    NOT NULL DEFAULT 'month',
    ADD COLUMN trial_days integer NOT NULL DEFAULT 0;

ALTER TABLE subscription_list
    ADD COLUMN quantity             integer     NOT NULL DEFAULT 1,
    ADD COLUMN trial_ends_at        timestamptz,
    ADD COLUMN current_period_start timestamptz,
    ADD COLUMN current_period_end   timestamptz,
    ADD COLUMN cancel_at_period_end boolean     NOT NULL DEFAULT false;

-- Subscriptions started before had monthly periods from their start (the aggregate derives
-- the same; a rebuild writes the same).
UPDATE subscription_list
SET current_period_start = started_at,
    current_period_end   = started_at + interval '1 month'
WHERE current_period_start IS NULL;

-- What the scheduler asks: which live subscriptions' periods have ended.
CREATE INDEX subscription_list_period_end ON subscription_list (current_period_end)
    WHERE status <> 'canceled';
