-- +goose Up
ALTER TABLE seller_offers ADD COLUMN delivery_days int, ADD COLUMN delivery_note text;
ALTER TABLE purchase_requests ADD COLUMN accepted_offer_id uuid REFERENCES seller_offers (id);

-- +goose Down
ALTER TABLE purchase_requests DROP COLUMN accepted_offer_id;
ALTER TABLE seller_offers DROP COLUMN delivery_note, DROP COLUMN delivery_days;
