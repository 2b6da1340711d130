-- +goose Up
ALTER TABLE users ADD COLUMN roles text[] NOT NULL DEFAULT '{buyer}';
UPDATE users SET roles = ARRAY[role];
ALTER TABLE users DROP COLUMN IF EXISTS role;
ALTER TABLE users DROP COLUMN IF EXISTS mongo_version;

-- +goose Down
ALTER TABLE users ADD COLUMN role text NOT NULL DEFAULT 'buyer';
ALTER TABLE users DROP COLUMN roles;
