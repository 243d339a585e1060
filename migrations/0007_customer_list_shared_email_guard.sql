-- Creating a customer (or taking an email without the dangerous flag) must be refused while a
-- live customer holds that email through dangerouslyAllowSameEmailForDifferentCustomers.
-- The exclusive unique index cannot say "no shared holder either", so the append statement
-- calls this guard in its customer_list write. It raises the same SQLSTATE as a unique index
-- (23505) with its own constraint name, which the event log maps to the email refusal, and
-- the whole append fails. Asking here instead of before the append saves every create a
-- round trip to the database.
CREATE FUNCTION customer_list_email_free(claim_tenant text, claim_email_key text, claimant text)
    RETURNS boolean
    LANGUAGE plpgsql AS
$$
BEGIN
    IF EXISTS (SELECT 1
               FROM customer_list
               WHERE deleted_at IS NULL
                 AND email_shared
                 AND tenant = claim_tenant
                 AND email_key = claim_email_key
                 AND id <> claimant) THEN
        RAISE unique_violation USING
            CONSTRAINT = 'customer_list_email_shared',
            MESSAGE = 'a live customer shares this email';
    END IF;
    RETURN true;
END
$$;
