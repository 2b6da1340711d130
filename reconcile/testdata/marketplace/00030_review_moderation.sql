-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    EXECUTE 'ALTER TABLE reviews ADD COLUMN hidden boolean NOT NULL DEFAULT false';
    EXECUTE 'ALTER TABLE reviews DROP COLUMN IF EXISTS moderator_note';
END
$$;
-- +goose StatementEnd

-- +goose Down
ALTER TABLE reviews DROP COLUMN hidden;
