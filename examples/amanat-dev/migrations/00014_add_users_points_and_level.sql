-- Loyalty points and level on users (Postgres successor of migrateUserPoints).

-- +goose Up
ALTER TABLE users
    ADD COLUMN points   integer  NOT NULL DEFAULT 0,
    ADD COLUMN level_id smallint REFERENCES levels (id) ON DELETE SET NULL;

ALTER TABLE users ADD CONSTRAINT users_points_check CHECK (points >= 0);

CREATE INDEX users_level_id_idx ON users (level_id);

-- +goose Down
DROP INDEX IF EXISTS users_level_id_idx;
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_points_check;
ALTER TABLE users
    DROP COLUMN IF EXISTS level_id,
    DROP COLUMN IF EXISTS points;
