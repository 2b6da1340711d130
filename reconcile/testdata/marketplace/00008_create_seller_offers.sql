-- +goose Up
CREATE TABLE seller_offers (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    request_id  uuid NOT NULL REFERENCES purchase_requests (id) ON DELETE CASCADE,
    seller_id   uuid NOT NULL REFERENCES users (id),
    price       numeric(12, 2) NOT NULL,
    message     text,
    status      text NOT NULL DEFAULT 'pending',
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE seller_offers;
