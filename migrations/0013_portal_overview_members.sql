-- portal_overview documents also show a customer's subscription and payment methods, whose
-- later events name only their own aggregate. Each row lists the ids of the aggregates its
-- document shows, so those events find their document with one indexed lookup.
ALTER TABLE portal_overview ADD COLUMN aggregate_ids text[] NOT NULL DEFAULT '{}';
CREATE INDEX portal_overview_aggregate_ids ON portal_overview USING gin (aggregate_ids);
