-- +goose Up
CREATE TABLE payments (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    request_id  uuid NOT NULL REFERENCES purchase_requests (id),
    amount      text NOT NULL,
    tx_hash     text,
    status      text NOT NULL DEFAULT 'pending',
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE payments;
