-- Delivery terms on offers, and a pointer from a request to the accepted offer.
ALTER TABLE seller_offers
    ADD COLUMN delivery_days integer,
    ADD COLUMN expires_at    timestamptz;
--> statement-breakpoint
ALTER TABLE seller_offers
    ADD CONSTRAINT seller_offers_delivery_days_check CHECK (delivery_days IS NULL OR delivery_days > 0);
--> statement-breakpoint
ALTER TABLE purchase_requests
    ADD COLUMN accepted_offer_id uuid REFERENCES seller_offers (id) ON DELETE SET NULL;
--> statement-breakpoint
CREATE UNIQUE INDEX purchase_requests_accepted_offer_id_key ON purchase_requests (accepted_offer_id)
    WHERE accepted_offer_id IS NOT NULL;
