-- +goose Up
CREATE TABLE temp_verifications (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email      text NOT NULL,
    code       text NOT NULL,
    expires_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE temp_verifications;
