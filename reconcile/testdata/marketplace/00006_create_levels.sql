-- +goose Up
CREATE TABLE levels (
    id         smallint PRIMARY KEY,
    name       text     NOT NULL,
    min_points int      NOT NULL
);
INSERT INTO levels VALUES (1, 'bronze', 0), (2, 'silver', 100), (3, 'gold', 1000);

-- +goose Down
DROP TABLE levels;
