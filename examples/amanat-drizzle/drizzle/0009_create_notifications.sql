-- In-app notifications.
CREATE TABLE notifications (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type       text        NOT NULL,
    title      text        NOT NULL,
    body       text,
    data       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    read       boolean     NOT NULL DEFAULT false,
    read_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
-- userId + read (unread badge count / inbox filter)
CREATE INDEX notifications_user_id_read_idx ON notifications (user_id, read);
--> statement-breakpoint
CREATE INDEX notifications_created_at_idx ON notifications (created_at);
