-- +goose Up
ALTER TABLE temp_verifications RENAME TO email_verifications;
ALTER TABLE email_verifications ADD COLUMN attempts int NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE email_verifications DROP COLUMN attempts;
ALTER TABLE email_verifications RENAME TO temp_verifications;
