-- billstream's extensions of the postgres-es log:
-- position: one global order over all events, for feeds and projection checkpoints;
-- transaction_id: the appending transaction, so a reader can tell when every event below a
--   position has committed (positions are handed out before commit, not in commit order);
-- recorded_at: when the log received the event;
-- tenant: `merchant_…:test|live`, so a tenant's feed is one index range.
ALTER TABLE events
    ADD COLUMN position       bigint GENERATED ALWAYS AS IDENTITY,
    ADD COLUMN transaction_id xid8        NOT NULL DEFAULT pg_current_xact_id(),
    ADD COLUMN recorded_at    timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN tenant         text;

-- Positions grow with the table, so a BRIN index finds "everything after position N" for
-- next to nothing on insert; identity already keeps positions unique.
CREATE INDEX events_position ON events USING brin (position);
CREATE INDEX events_tenant_position ON events (tenant, position);
