-- Indexes for the hot "my payments" and inbox queries. drizzle's migrator runs
-- all pending migrations in one transaction, where CREATE INDEX CONCURRENTLY is
-- impossible, so they are plain CREATE INDEX: dbops flags them as risky on
-- tables over 10 MiB, and apply waits for a maintenance window.
-- "my payments" page: WHERE user_id = $1 AND status = $2 ORDER BY created_at DESC
CREATE INDEX IF NOT EXISTS payments_user_id_status_created_at_idx
    ON payments (user_id, status, created_at DESC);
--> statement-breakpoint
-- unread inbox: WHERE user_id = $1 AND NOT read ORDER BY created_at DESC
CREATE INDEX IF NOT EXISTS notifications_user_id_unread_created_at_idx
    ON notifications (user_id, created_at DESC) WHERE NOT read;
