-- A merchant's own prefix for each series of document numbers ("ACME" gives ACME-0001). The
-- prefix names the series in document_numbers, so it is set before the first number of the
-- merchant and not changed after (app/src/number_prefixes.rs).
ALTER TABLE merchants
    ADD COLUMN invoice_prefix      text NOT NULL DEFAULT 'INV'
        CHECK (invoice_prefix ~ '^[A-Z0-9][A-Z0-9-]{0,10}[A-Z0-9]$|^[A-Z0-9]$'),
    ADD COLUMN cancellation_prefix text NOT NULL DEFAULT 'CAN'
        CHECK (cancellation_prefix ~ '^[A-Z0-9][A-Z0-9-]{0,10}[A-Z0-9]$|^[A-Z0-9]$'),
    ADD COLUMN credit_note_prefix  text NOT NULL DEFAULT 'CN'
        CHECK (credit_note_prefix ~ '^[A-Z0-9][A-Z0-9-]{0,10}[A-Z0-9]$|^[A-Z0-9]$'),
    ADD CONSTRAINT merchants_prefixes_distinct CHECK (
        invoice_prefix <> cancellation_prefix
        AND invoice_prefix <> credit_note_prefix
        AND cancellation_prefix <> credit_note_prefix);
