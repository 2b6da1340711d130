-- +goose Up
CREATE SCHEMA reporting;
CREATE TABLE reporting.daily_payments AS
SELECT date_trunc('day', created_at) AS day, count(*) AS n, sum(amount) AS total
FROM payments GROUP BY 1;

-- +goose Down
DROP SCHEMA reporting CASCADE;
