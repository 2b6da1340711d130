-- Loyalty / seller levels (seeded idempotently by seedLevels).
-- Users are linked to a level in 00014_add_users_points_and_level.
CREATE TABLE levels (
    id              smallint      PRIMARY KEY,
    code            text          NOT NULL,
    name            text          NOT NULL,
    min_points      integer       NOT NULL DEFAULT 0,
    commission_rate numeric(5, 4) NOT NULL DEFAULT 0.0500,
    perks           jsonb         NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    updated_at      timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT levels_code_key UNIQUE (code),
    CONSTRAINT levels_min_points_key UNIQUE (min_points),
    CONSTRAINT levels_min_points_check CHECK (min_points >= 0),
    CONSTRAINT levels_commission_rate_check CHECK (commission_rate >= 0 AND commission_rate < 1)
);
--> statement-breakpoint
CREATE TRIGGER levels_set_updated_at
    BEFORE UPDATE ON levels
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
