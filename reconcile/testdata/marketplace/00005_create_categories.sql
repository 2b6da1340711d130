-- +goose Up
CREATE TABLE categories (
    id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    parent_id uuid REFERENCES categories (id),
    slug      text NOT NULL UNIQUE,
    name      text NOT NULL,
    position  int  NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE categories;
