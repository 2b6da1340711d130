-- Soft delete and last-login tracking on users.

-- +goose Up
ALTER TABLE users
    ADD COLUMN last_login_at timestamptz,
    ADD COLUMN deleted_at    timestamptz;

CREATE INDEX users_deleted_at_idx ON users (deleted_at) WHERE deleted_at IS NOT NULL;

-- +goose Down
DROP INDEX IF EXISTS users_deleted_at_idx;
ALTER TABLE users
    DROP COLUMN IF EXISTS deleted_at,
    DROP COLUMN IF EXISTS last_login_at;
