-- Post-deal reviews between buyer and seller.
CREATE TABLE reviews (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    request_id  uuid        NOT NULL REFERENCES purchase_requests (id) ON DELETE CASCADE,
    reviewer_id uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    reviewee_id uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    rating      smallint    NOT NULL,
    comment     text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reviews_rating_check CHECK (rating BETWEEN 1 AND 5),
    CONSTRAINT reviews_not_self_check CHECK (reviewer_id <> reviewee_id),
    CONSTRAINT reviews_request_reviewer_key UNIQUE (request_id, reviewer_id)
);
--> statement-breakpoint
CREATE INDEX reviews_reviewee_id_created_at_idx ON reviews (reviewee_id, created_at DESC);
--> statement-breakpoint
CREATE TRIGGER reviews_set_updated_at
    BEFORE UPDATE ON reviews
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
