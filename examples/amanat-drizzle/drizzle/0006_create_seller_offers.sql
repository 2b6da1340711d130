-- Seller offers made against a purchase request.
CREATE TABLE seller_offers (
    id         uuid           PRIMARY KEY DEFAULT gen_random_uuid(),
    request_id uuid           NOT NULL REFERENCES purchase_requests (id) ON DELETE CASCADE,
    seller_id  uuid           NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    price      numeric(18, 2) NOT NULL,
    currency   char(3)        NOT NULL DEFAULT 'USD',
    message    text,
    status     text           NOT NULL DEFAULT 'pending',
    created_at timestamptz    NOT NULL DEFAULT now(),
    updated_at timestamptz    NOT NULL DEFAULT now(),
    CONSTRAINT seller_offers_status_check
        CHECK (status IN ('pending', 'accepted', 'rejected', 'withdrawn', 'expired')),
    CONSTRAINT seller_offers_price_check CHECK (price > 0),
    -- one live offer per seller per request
    CONSTRAINT seller_offers_request_seller_key UNIQUE (request_id, seller_id)
);
--> statement-breakpoint
-- requestId is covered by the leading column of seller_offers_request_seller_key.
CREATE INDEX seller_offers_seller_id_idx ON seller_offers (seller_id);
--> statement-breakpoint
CREATE INDEX seller_offers_status_idx ON seller_offers (status);
--> statement-breakpoint
CREATE TRIGGER seller_offers_set_updated_at
    BEFORE UPDATE ON seller_offers
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
