-- Durable records of multi-step flows (a subscription's start and cancel, a cascade delete, a
-- payment method's move, an add that becomes the default). A flow writes its row before its
-- first step and marks it finished after its last; a row left unfinished by an instance that
-- is gone (its liveness lock ended with its connection) is resumed by another instance. The
-- flow's id is in the metadata of every event it writes, so a resumed flow skips the steps
-- that already happened.
CREATE TABLE flow_runs
(
    id          text        PRIMARY KEY,
    tenant      text        NOT NULL,
    kind        text        NOT NULL,
    input       jsonb       NOT NULL,
    -- The instance running it (its liveness lock's key); NULL when nobody is: it failed on
    -- our side and waits for a resume.
    holder      bigint,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    attempts    integer     NOT NULL DEFAULT 1
);

CREATE INDEX flow_runs_unfinished ON flow_runs (started_at) WHERE finished_at IS NULL;
CREATE INDEX flow_runs_finished ON flow_runs (finished_at) WHERE finished_at IS NOT NULL;

-- Who runs a keyed request: its retry takes it over only once that instance is gone, never on
-- a timer.
ALTER TABLE idempotency_keys ADD COLUMN holder bigint;

-- The events one flow (or keyed request) wrote, found by its id: a resumed flow skips a step
-- whose aggregate already has its event. Partial: only flows' appends pay for an entry.
CREATE INDEX events_flow ON events ((metadata ->> 'flowId'), aggregate_type)
    WHERE (metadata ->> 'flowId') IS NOT NULL;

-- Replaced by events_flow: a keyed request's events carry its flow id.
DROP INDEX events_idempotency_key;
