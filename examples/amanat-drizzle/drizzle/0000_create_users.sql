-- Users: the root of every marketplace relation.
-- IDs are PostgreSQL UUIDs (gen_random_uuid() is built in since PG 13).
-- legacy_object_id keeps the old MongoDB User._id for backwards compatibility;
-- marketplace foreign keys always reference users.id (the UUID).
CREATE TABLE users (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    email            text        NOT NULL,
    password_hash    text,
    google_id        text,
    display_name     text,
    avatar_url       text,
    role             text        NOT NULL DEFAULT 'buyer',
    email_verified   boolean     NOT NULL DEFAULT false,
    legacy_object_id text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_role_check CHECK (role IN ('buyer', 'seller', 'admin')),
    CONSTRAINT users_legacy_object_id_check
        CHECK (legacy_object_id IS NULL OR legacy_object_id ~ '^[0-9a-f]{24}$')
);
--> statement-breakpoint
-- email (unique)
CREATE UNIQUE INDEX users_email_key ON users (email);
--> statement-breakpoint
-- googleId (sparse) -> partial unique index
CREATE UNIQUE INDEX users_google_id_key ON users (google_id) WHERE google_id IS NOT NULL;
--> statement-breakpoint
-- legacy Mongo ObjectId lookup during data archaeology / backfill tooling
CREATE UNIQUE INDEX users_legacy_object_id_key ON users (legacy_object_id) WHERE legacy_object_id IS NOT NULL;
--> statement-breakpoint
CREATE INDEX users_role_idx ON users (role);
--> statement-breakpoint
CREATE INDEX users_created_at_idx ON users (created_at);
