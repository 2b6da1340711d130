-- Product categories (seeded idempotently by seedCategories).
CREATE TABLE categories (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    slug       text        NOT NULL,
    name       text        NOT NULL,
    parent_id  uuid        REFERENCES categories (id) ON DELETE SET NULL,
    icon       text,
    sort_order integer     NOT NULL DEFAULT 0,
    is_active  boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT categories_slug_key UNIQUE (slug)
);
--> statement-breakpoint
CREATE INDEX categories_parent_id_idx ON categories (parent_id);
--> statement-breakpoint
CREATE INDEX categories_active_sort_idx ON categories (sort_order) WHERE is_active;
--> statement-breakpoint
CREATE TRIGGER categories_set_updated_at
    BEFORE UPDATE ON categories
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
