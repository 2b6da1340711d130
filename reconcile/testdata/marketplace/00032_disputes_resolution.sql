-- +goose Up
ALTER TABLE disputes ADD COLUMN resolution text, ADD COLUMN resolved_at timestamptz;
ALTER TABLE disputes ALTER COLUMN reason TYPE varchar(2000);
CREATE INDEX disputes_status_idx ON disputes (status);

-- +goose Down
DROP INDEX disputes_status_idx;
ALTER TABLE disputes DROP COLUMN resolved_at, DROP COLUMN resolution;
