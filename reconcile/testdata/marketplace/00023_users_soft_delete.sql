-- +goose Up
ALTER TABLE users ADD COLUMN deleted_at timestamptz, ADD COLUMN last_login_at timestamptz;

-- +goose Down
ALTER TABLE users DROP COLUMN last_login_at, DROP COLUMN deleted_at;
