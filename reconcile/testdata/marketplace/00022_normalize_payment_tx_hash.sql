-- +goose Up
ALTER TABLE payments RENAME COLUMN tx_hash TO transaction_hash;
ALTER TABLE payments ALTER COLUMN transaction_hash TYPE varchar(100);
CREATE UNIQUE INDEX payments_transaction_hash_key ON payments (transaction_hash);

-- +goose Down
DROP INDEX payments_transaction_hash_key;
ALTER TABLE payments RENAME COLUMN transaction_hash TO tx_hash;
