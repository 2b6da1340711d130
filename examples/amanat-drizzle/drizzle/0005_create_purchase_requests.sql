-- Buyer purchase requests. Note: a purchase request has no top-level payment id;
-- payments point at the request instead (payments.request_id).
CREATE TABLE purchase_requests (
    id          uuid           PRIMARY KEY DEFAULT gen_random_uuid(),
    buyer_id    uuid           NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    category_id uuid           REFERENCES categories (id) ON DELETE SET NULL,
    title       text           NOT NULL,
    description text           NOT NULL DEFAULT '',
    budget      numeric(18, 2),
    currency    char(3)        NOT NULL DEFAULT 'USD',
    status      text           NOT NULL DEFAULT 'open',
    images      jsonb          NOT NULL DEFAULT '[]'::jsonb,
    created_at  timestamptz    NOT NULL DEFAULT now(),
    updated_at  timestamptz    NOT NULL DEFAULT now(),
    CONSTRAINT purchase_requests_status_check
        CHECK (status IN ('draft', 'open', 'in_progress', 'completed', 'cancelled', 'disputed')),
    CONSTRAINT purchase_requests_budget_check CHECK (budget IS NULL OR budget >= 0),
    CONSTRAINT purchase_requests_images_check CHECK (jsonb_typeof(images) = 'array')
);
--> statement-breakpoint
CREATE INDEX purchase_requests_buyer_id_idx ON purchase_requests (buyer_id);
--> statement-breakpoint
CREATE INDEX purchase_requests_status_idx ON purchase_requests (status);
--> statement-breakpoint
CREATE INDEX purchase_requests_created_at_idx ON purchase_requests (created_at);
--> statement-breakpoint
CREATE INDEX purchase_requests_category_id_idx ON purchase_requests (category_id);
--> statement-breakpoint
-- Full-text search over title + description (replaces the Mongo text index).
-- The two-argument to_tsvector with an explicit regconfig is IMMUTABLE, so it
-- can be indexed; queries must use the very same expression to hit the index.
CREATE INDEX purchase_requests_search_idx ON purchase_requests
    USING gin (to_tsvector('simple'::regconfig, title || ' ' || description));
--> statement-breakpoint
CREATE TRIGGER purchase_requests_set_updated_at
    BEFORE UPDATE ON purchase_requests
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
