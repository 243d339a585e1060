-- Catch-up projections read the log after the append has committed, in commit order. Each
-- keeps its checkpoint here, written in the transaction that writes its rows, so every event
-- is applied exactly once even across crashes.
--
-- The checkpoint is a cursor over (transaction_id, position), not over position alone:
-- positions are handed out before commit, so a transaction can commit after one holding a
-- higher position, and a reader that had moved past that position would never see it. A
-- reader takes only events of transactions older than every running one
-- (pg_snapshot_xmin), and in (transaction_id, position) order no later commit can ever land
-- behind its cursor.
CREATE TABLE projection_checkpoints
(
    name           text PRIMARY KEY,
    transaction_id xid8        NOT NULL DEFAULT '0',
    position       bigint      NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- The catch-up read: everything after a cursor, in commit order.
CREATE INDEX events_commit_order ON events (transaction_id, position);

-- A tenant's feed follows the same cursor; it replaces the (tenant, position) index.
CREATE INDEX events_tenant_commit_order ON events (tenant, transaction_id, position);
DROP INDEX events_tenant_position;
