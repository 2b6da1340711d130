-- +goose Up
CREATE TABLE IF NOT EXISTS payment_webhook_events (
    id          bigserial PRIMARY KEY,
    provider    text NOT NULL,
    event_id    text NOT NULL,
    payload     jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, event_id)
);

-- +goose Down
DROP TABLE payment_webhook_events;
