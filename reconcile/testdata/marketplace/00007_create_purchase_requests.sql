-- +goose Up
CREATE TABLE purchase_requests (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    buyer_id    uuid NOT NULL REFERENCES users (id),
    category_id uuid REFERENCES categories (id) ON DELETE SET NULL,
    title       text NOT NULL,
    description text NOT NULL DEFAULT '',
    budget      numeric(12, 2),
    currency    char(3) NOT NULL DEFAULT 'USD',
    status      text NOT NULL DEFAULT 'open',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX purchase_requests_buyer_idx ON purchase_requests (buyer_id);

-- +goose Down
DROP TABLE purchase_requests;
