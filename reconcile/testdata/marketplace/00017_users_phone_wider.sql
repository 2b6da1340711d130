-- +goose Up
ALTER TABLE users ALTER COLUMN phone TYPE varchar(32);

-- +goose Down
ALTER TABLE users ALTER COLUMN phone TYPE varchar(20);
