-- +goose Up
CREATE TABLE chats (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    request_id   uuid REFERENCES purchase_requests (id) ON DELETE SET NULL,
    participants jsonb NOT NULL DEFAULT '[]',
    messages     jsonb NOT NULL DEFAULT '[]',
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE chats;
