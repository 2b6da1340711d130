-- +goose NO TRANSACTION
-- Indexes on large, hot tables are built CONCURRENTLY so writes are not blocked.
-- CREATE/DROP INDEX CONCURRENTLY cannot run inside a transaction block, hence
-- NO TRANSACTION above. IF [NOT] EXISTS makes a retry after a partial failure safe
-- (a failed concurrent build leaves an INVALID index: drop it and re-run).

-- +goose Up
-- "my payments" page: WHERE user_id = $1 AND status = $2 ORDER BY created_at DESC
CREATE INDEX CONCURRENTLY IF NOT EXISTS payments_user_id_status_created_at_idx
    ON payments (user_id, status, created_at DESC);

-- unread inbox: WHERE user_id = $1 AND NOT read ORDER BY created_at DESC
CREATE INDEX CONCURRENTLY IF NOT EXISTS notifications_user_id_unread_created_at_idx
    ON notifications (user_id, created_at DESC) WHERE NOT read;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS notifications_user_id_unread_created_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS payments_user_id_status_created_at_idx;
