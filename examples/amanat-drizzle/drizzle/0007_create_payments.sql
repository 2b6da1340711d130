-- Escrow payments. amount is numeric(18,2); the API exposes it as a decimal
-- string (PaymentDTO.amount) so no precision is lost in JSON.
CREATE TABLE payments (
    id                  uuid           PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             uuid           NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    request_id          uuid           REFERENCES purchase_requests (id) ON DELETE SET NULL,
    offer_id            uuid           REFERENCES seller_offers (id) ON DELETE SET NULL,
    provider            text           NOT NULL,
    provider_payment_id text,
    amount              numeric(18, 2) NOT NULL,
    currency            text           NOT NULL DEFAULT 'USD',
    status              text           NOT NULL DEFAULT 'pending',
    transaction_hash    text,
    metadata            jsonb          NOT NULL DEFAULT '{}'::jsonb,
    created_at          timestamptz    NOT NULL DEFAULT now(),
    updated_at          timestamptz    NOT NULL DEFAULT now(),
    CONSTRAINT payments_status_check
        CHECK (status IN ('pending', 'processing', 'held', 'released', 'refunded', 'failed', 'cancelled')),
    CONSTRAINT payments_amount_check CHECK (amount > 0)
);
--> statement-breakpoint
-- providerPaymentId (unique sparse) -> partial unique index
CREATE UNIQUE INDEX payments_provider_payment_id_key ON payments (provider_payment_id)
    WHERE provider_payment_id IS NOT NULL;
--> statement-breakpoint
CREATE INDEX payments_user_id_idx ON payments (user_id);
--> statement-breakpoint
CREATE INDEX payments_status_idx ON payments (status);
--> statement-breakpoint
CREATE INDEX payments_created_at_idx ON payments (created_at);
--> statement-breakpoint
CREATE INDEX payments_transaction_hash_idx ON payments (transaction_hash);
--> statement-breakpoint
CREATE INDEX payments_request_id_idx ON payments (request_id);
--> statement-breakpoint
CREATE TRIGGER payments_set_updated_at
    BEFORE UPDATE ON payments
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
