-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY IF NOT EXISTS payments_status_idx ON payments (status);
CREATE INDEX CONCURRENTLY IF NOT EXISTS notifications_user_unread_idx ON notifications (user_id) WHERE NOT read;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS notifications_user_unread_idx;
DROP INDEX CONCURRENTLY IF EXISTS payments_status_idx;
