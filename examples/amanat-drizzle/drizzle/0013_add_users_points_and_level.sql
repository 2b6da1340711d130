-- Loyalty points and level on users (Postgres successor of migrateUserPoints).
ALTER TABLE users
    ADD COLUMN points   integer  NOT NULL DEFAULT 0,
    ADD COLUMN level_id smallint REFERENCES levels (id) ON DELETE SET NULL;
--> statement-breakpoint
ALTER TABLE users ADD CONSTRAINT users_points_check CHECK (points >= 0);
--> statement-breakpoint
CREATE INDEX users_level_id_idx ON users (level_id);
