-- Chats store messages and participants as JSONB arrays on the row itself.
CREATE TABLE chats (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    request_id      uuid        REFERENCES purchase_requests (id) ON DELETE SET NULL,
    participants    jsonb       NOT NULL DEFAULT '[]'::jsonb,
    messages        jsonb       NOT NULL DEFAULT '[]'::jsonb,
    last_message_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chats_participants_is_array CHECK (jsonb_typeof(participants) = 'array'),
    CONSTRAINT chats_messages_is_array CHECK (jsonb_typeof(messages) = 'array')
);
--> statement-breakpoint
-- participants (array): supports  participants @> '["<user uuid>"]'
CREATE INDEX chats_participants_idx ON chats USING gin (participants jsonb_path_ops);
--> statement-breakpoint
CREATE INDEX chats_updated_at_idx ON chats (updated_at);
--> statement-breakpoint
CREATE INDEX chats_request_id_idx ON chats (request_id);
--> statement-breakpoint
CREATE TRIGGER chats_set_updated_at
    BEFORE UPDATE ON chats
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
