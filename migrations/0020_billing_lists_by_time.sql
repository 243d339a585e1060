-- Invoices and payments list newest first by when they were made: their ids are derived from
-- what they bill (a period, a charge attempt) so that a rerun makes the same one, and do not
-- sort by creation the way generated ids do.
CREATE INDEX invoice_list_tenant_created ON invoice_list (tenant, created_at, id);
CREATE INDEX invoice_list_customer_created ON invoice_list (customer_id, created_at, id);
CREATE INDEX payment_list_tenant_created ON payment_list (tenant, created_at, id);
CREATE INDEX payment_list_customer_created ON payment_list (customer_id, created_at, id);
