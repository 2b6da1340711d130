-- +goose Up
-- delivery_note moved to the chat; the column never shipped.
ALTER TABLE seller_offers DROP COLUMN delivery_note;

-- +goose Down
ALTER TABLE seller_offers ADD COLUMN delivery_note text;
