-- The events a keyed request wrote, found by its Idempotency-Key: a request whose process died
-- before its response was stored is then known to have happened (or not), and is never run a
-- second time. Partial: only keyed appends pay for an entry.
CREATE INDEX events_idempotency_key ON events (tenant, (metadata ->> 'idempotencyKey'))
    WHERE (metadata ->> 'idempotencyKey') IS NOT NULL;
