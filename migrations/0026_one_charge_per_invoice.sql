-- One charge of an invoice at a time, and none once one succeeded: two pays of one invoice
-- racing (a double click) must not both reach the provider. Claimed by the charge's
-- PaymentInitiated in its own append; a failed charge leaves room for the next attempt.
CREATE UNIQUE INDEX payment_list_one_live_charge ON payment_list (invoice_id)
    WHERE kind = 'charge' AND status IN ('pending', 'succeeded');
