-- +goose Up
CREATE TABLE disputes (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    request_id  uuid NOT NULL REFERENCES purchase_requests (id),
    opened_by   uuid NOT NULL REFERENCES users (id),
    reason      text NOT NULL,
    status      text NOT NULL DEFAULT 'open',
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE disputes;
