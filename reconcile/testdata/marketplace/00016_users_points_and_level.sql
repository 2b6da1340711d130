-- +goose Up
ALTER TABLE users ADD COLUMN points int NOT NULL DEFAULT 0,
                  ADD COLUMN level_id smallint REFERENCES levels (id) DEFAULT 1;

-- +goose Down
ALTER TABLE users DROP COLUMN level_id, DROP COLUMN points;
