-- Where the hosted portal page sends a customer back to: the merchant's own page, given when
-- the session is made. Kept on the row after the session expires (rows are never deleted), so
-- the page can still offer the way back to a customer who opens an expired link.
ALTER TABLE portal_sessions ADD COLUMN return_url text;
