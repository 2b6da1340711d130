-- +goose Up
-- amount was a decimal string in the Mongo era; store it as numeric.
ALTER TABLE payments ALTER COLUMN amount TYPE numeric(18, 2) USING amount::numeric;

-- +goose Down
ALTER TABLE payments ALTER COLUMN amount TYPE text;
