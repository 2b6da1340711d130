-- +goose Up
-- Messages move out of the chats.messages JSONB array into their own table.
CREATE TABLE chat_messages (
    id         bigserial PRIMARY KEY,
    chat_id    uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    sender_id  uuid NOT NULL REFERENCES users (id),
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO chat_messages (chat_id, sender_id, body, created_at)
SELECT c.id, (m ->> 'sender')::uuid, m ->> 'body', (m ->> 'at')::timestamptz
FROM chats c, jsonb_array_elements(c.messages) m;
ALTER TABLE chats DROP COLUMN messages;

-- +goose Down
ALTER TABLE chats ADD COLUMN messages jsonb NOT NULL DEFAULT '[]';
DROP TABLE chat_messages;
