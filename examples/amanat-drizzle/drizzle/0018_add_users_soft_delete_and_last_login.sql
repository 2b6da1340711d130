-- Soft delete and last-login tracking on users.
ALTER TABLE users
    ADD COLUMN last_login_at timestamptz,
    ADD COLUMN deleted_at    timestamptz;
--> statement-breakpoint
CREATE INDEX users_deleted_at_idx ON users (deleted_at) WHERE deleted_at IS NOT NULL;
