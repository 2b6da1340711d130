-- +goose Up
CREATE TABLE addresses (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    line1      text NOT NULL,
    line2      text,
    city       text NOT NULL,
    country    char(2) NOT NULL,
    zip        text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX addresses_user_id_idx ON addresses (user_id);

-- +goose Down
DROP TABLE addresses;
