-- Durable log of payment-provider webhooks. Fast-path deduplication happens in
-- Redis (payment:idem:<requestId>); this table is the permanent record.
CREATE TABLE payment_webhook_events (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    provider          text        NOT NULL,
    provider_event_id text        NOT NULL,
    payment_id        uuid        REFERENCES payments (id) ON DELETE SET NULL,
    event_type        text        NOT NULL,
    payload           jsonb       NOT NULL,
    processed_at      timestamptz,
    error             text,
    received_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payment_webhook_events_provider_event_key UNIQUE (provider, provider_event_id)
);
--> statement-breakpoint
CREATE INDEX payment_webhook_events_payment_id_idx ON payment_webhook_events (payment_id);
--> statement-breakpoint
CREATE INDEX payment_webhook_events_unprocessed_idx ON payment_webhook_events (received_at)
    WHERE processed_at IS NULL;
