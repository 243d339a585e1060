-- The credits a plan grants each period, per feature: [{featureSlug, name, amount, rollover}].
ALTER TABLE plan_list ADD COLUMN credits jsonb NOT NULL DEFAULT '[]';
