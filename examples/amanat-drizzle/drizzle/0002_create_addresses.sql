-- Shipping / billing addresses. One user may have many; at most one is primary.
CREATE TABLE addresses (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label        text,
    full_name    text        NOT NULL,
    phone        text,
    line1        text        NOT NULL,
    line2        text,
    city         text        NOT NULL,
    region       text,
    postal_code  text,
    country_code char(2)     NOT NULL,
    is_primary   boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
-- userId
CREATE INDEX addresses_user_id_idx ON addresses (user_id);
--> statement-breakpoint
-- compound index for the "primary address of user X" lookup
CREATE INDEX addresses_user_id_is_primary_idx ON addresses (user_id, is_primary);
--> statement-breakpoint
-- at most one primary address per user
CREATE UNIQUE INDEX addresses_one_primary_per_user ON addresses (user_id) WHERE is_primary;
--> statement-breakpoint
CREATE TRIGGER addresses_set_updated_at
    BEFORE UPDATE ON addresses
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
