-- Marketplace fixture: a fresh database must migrate from zero without --allow-risky.
-- +goose Up
CREATE EXTENSION IF NOT EXISTS pgcrypto;
-- Left behind by the Mongo import on some developer databases; absent elsewhere.
DROP TABLE IF EXISTS mongo_import_users;
DROP TABLE IF EXISTS mongo_import_requests CASCADE;
DROP SCHEMA IF EXISTS mongo_import CASCADE;

-- +goose Down
SELECT 1;
