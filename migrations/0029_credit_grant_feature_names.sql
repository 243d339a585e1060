-- What the merchant calls a grant's feature ("API calls"), when the grant says: a plan's
-- allowance does. Balances show the latest grant's name, or the slug.
ALTER TABLE credit_grants ADD COLUMN feature_name text;
