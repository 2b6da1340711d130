-- Normalise on-chain transaction hashes to lower-case 0x-prefixed hex and
-- enforce it (Postgres successor of the fix-transaction-hashes script).
-- The data normalisation itself is not reversible; Down only drops the check.
DO $$
BEGIN
    UPDATE payments
       SET transaction_hash = lower(
               CASE WHEN transaction_hash ~* '^0x' THEN transaction_hash
                    ELSE '0x' || transaction_hash END)
     WHERE transaction_hash IS NOT NULL
       AND transaction_hash !~ '^0x[0-9a-f]+$';

    UPDATE payments SET transaction_hash = NULL WHERE transaction_hash = '';
END
$$;
--> statement-breakpoint
-- NOT VALID + VALIDATE: the validation scan takes only a SHARE UPDATE EXCLUSIVE lock.
ALTER TABLE payments
    ADD CONSTRAINT payments_transaction_hash_format_check
    CHECK (transaction_hash IS NULL OR transaction_hash ~ '^0x[0-9a-f]+$') NOT VALID;
--> statement-breakpoint
ALTER TABLE payments VALIDATE CONSTRAINT payments_transaction_hash_format_check;
