-- Snapshots of aggregates with long histories: the state after `sequence` events, so a load
-- reads one row and the events after it. Ours, not postgres-es's `snapshots`: cqrs-es 0.5.0's
-- snapshot store applies new events twice. `schema` names the aggregate code that wrote the
-- state; a snapshot of another schema is ignored and the aggregate replayed in full.
CREATE TABLE aggregate_snapshots
(
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    schema         integer     NOT NULL,
    sequence       bigint      NOT NULL CHECK (sequence > 0),
    state          json        NOT NULL,
    taken_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id)
);
