-- +goose Up
CREATE TABLE users (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    legacy_object_id text        UNIQUE,
    email            text        NOT NULL UNIQUE,
    display_name     text        NOT NULL DEFAULT '',
    phone            varchar(20),
    role             text        NOT NULL DEFAULT 'buyer',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE users;
