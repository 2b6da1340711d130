-- +goose Up
-- Codes are hashed from now on.
ALTER TABLE email_verifications DROP COLUMN code;
ALTER TABLE email_verifications ADD COLUMN code_hash bytea NOT NULL DEFAULT '';
TRUNCATE email_verifications;

-- +goose Down
ALTER TABLE email_verifications DROP COLUMN code_hash;
ALTER TABLE email_verifications ADD COLUMN code text NOT NULL DEFAULT '';
