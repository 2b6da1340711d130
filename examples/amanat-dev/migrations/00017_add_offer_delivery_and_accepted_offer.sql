-- Delivery terms on offers, and a pointer from a request to the accepted offer.

-- +goose Up
ALTER TABLE seller_offers
    ADD COLUMN delivery_days integer,
    ADD COLUMN expires_at    timestamptz;

ALTER TABLE seller_offers
    ADD CONSTRAINT seller_offers_delivery_days_check CHECK (delivery_days IS NULL OR delivery_days > 0);

ALTER TABLE purchase_requests
    ADD COLUMN accepted_offer_id uuid REFERENCES seller_offers (id) ON DELETE SET NULL;

CREATE UNIQUE INDEX purchase_requests_accepted_offer_id_key ON purchase_requests (accepted_offer_id)
    WHERE accepted_offer_id IS NOT NULL;

-- +goose Down
DROP INDEX IF EXISTS purchase_requests_accepted_offer_id_key;
ALTER TABLE purchase_requests DROP COLUMN IF EXISTS accepted_offer_id;
ALTER TABLE seller_offers DROP CONSTRAINT IF EXISTS seller_offers_delivery_days_check;
ALTER TABLE seller_offers
    DROP COLUMN IF EXISTS expires_at,
    DROP COLUMN IF EXISTS delivery_days;
