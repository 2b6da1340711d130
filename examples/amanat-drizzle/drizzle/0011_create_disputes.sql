-- Disputes opened by a buyer (or seller) against an escrow payment.
-- seller_id is stored explicitly (see the historical fix-dispute-sellers backfill).
CREATE TABLE disputes (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    payment_id  uuid        NOT NULL REFERENCES payments (id) ON DELETE RESTRICT,
    request_id  uuid        REFERENCES purchase_requests (id) ON DELETE SET NULL,
    opened_by   uuid        NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    seller_id   uuid        NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    assigned_to uuid        REFERENCES users (id) ON DELETE SET NULL,
    reason      text        NOT NULL,
    details     text,
    evidence    jsonb       NOT NULL DEFAULT '[]'::jsonb,
    status      text        NOT NULL DEFAULT 'open',
    resolution  text,
    resolved_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT disputes_status_check
        CHECK (status IN ('open', 'under_review', 'resolved_buyer', 'resolved_seller', 'closed')),
    CONSTRAINT disputes_resolution_check
        CHECK (resolution IS NULL OR resolution IN ('refund', 'release', 'partial_refund'))
);
--> statement-breakpoint
-- at most one unresolved dispute per payment
CREATE UNIQUE INDEX disputes_one_open_per_payment ON disputes (payment_id)
    WHERE status IN ('open', 'under_review');
--> statement-breakpoint
CREATE INDEX disputes_payment_id_idx ON disputes (payment_id);
--> statement-breakpoint
CREATE INDEX disputes_seller_id_idx ON disputes (seller_id);
--> statement-breakpoint
CREATE INDEX disputes_opened_by_idx ON disputes (opened_by);
--> statement-breakpoint
CREATE INDEX disputes_status_idx ON disputes (status);
--> statement-breakpoint
CREATE TRIGGER disputes_set_updated_at
    BEFORE UPDATE ON disputes
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
