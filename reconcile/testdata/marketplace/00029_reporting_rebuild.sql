-- +goose Up
DROP TABLE reporting.daily_payments;
CREATE MATERIALIZED VIEW reporting.daily_payments AS
SELECT date_trunc('day', created_at) AS day, count(*) AS n, sum(amount) AS total
FROM payments GROUP BY 1;

-- +goose Down
DROP MATERIALIZED VIEW reporting.daily_payments;
