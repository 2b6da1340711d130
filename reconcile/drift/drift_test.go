package drift

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/spec"
)

func TestMain(m *testing.M) { testsrv.Main(m) }

// gooseSet is a small migration set with each kind of object drift checks.
var gooseSet = map[string]string{
	"00001_users.sql": `-- +goose Up
CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL, name text DEFAULT 'x');
CREATE UNIQUE INDEX users_email_idx ON users (email);
-- +goose Down
DROP TABLE users;
`,
	"00002_payments.sql": `-- +goose Up
CREATE TABLE payments (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  hash text, amount numeric(12,2) CHECK (amount > 0), updated_at timestamptz);
-- +goose StatementBegin
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
-- +goose StatementEnd
CREATE TRIGGER payments_touch BEFORE UPDATE ON payments FOR EACH ROW EXECUTE FUNCTION touch();
CREATE VIEW big_payments AS SELECT id, amount FROM payments WHERE amount > 100;
CREATE TYPE payment_state AS ENUM ('new', 'paid');
ALTER TABLE payments ADD COLUMN state payment_state NOT NULL DEFAULT 'new';
CREATE SEQUENCE invoice_no START 1000;
ALTER TABLE payments ENABLE ROW LEVEL SECURITY;
CREATE POLICY payments_owner ON payments USING (user_id = current_setting('app.user_id')::bigint);
-- +goose Down
DROP VIEW big_payments; DROP TABLE payments; DROP FUNCTION touch(); DROP TYPE payment_state; DROP SEQUENCE invoice_no;
`,
	"00003_not_yet.sql": `-- +goose Up
CREATE TABLE later (id int);
-- +goose Down
DROP TABLE later;
`,
}

// migrated returns a database migrated with gooseSet to version 2 (the
// third migration is pending: it must not be expected), its handle and
// the stack's migrations.
func migrated(t *testing.T) (string, *sql.DB, *spec.Migrations) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range gooseSet {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := &spec.Migrations{Dir: "migrations", Path: dir, Format: spec.FormatGoose, Table: spec.DefaultMigrationTable,
		Target: spec.Target{Pinned: true, Version: 2}}
	url := testsrv.PostgresDB(t)
	db := testsrv.OpenDB(t, url)
	ctx := context.Background()
	eng := postgres.EngineFor(m)
	live, err := eng.Observe(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	p, err := eng.Diff(live)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Migrate(ctx, db, p, time.Second, postgres.MigrateOptions{}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return url, db, m
}

// scratchDatabases lists the databases drift left behind on the server.
func scratchDatabases(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query("SELECT datname FROM pg_database WHERE datname LIKE 'dbops\\_drift\\_%'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

func TestCheckGoose(t *testing.T) {
	tests := []struct {
		name   string
		change string // SQL run by hand on the live database
		revert string // SQL that undoes it
		want   []string
	}{
		{name: "untouched"},
		{
			name:   "extra index",
			change: "CREATE INDEX payments_hash_idx ON payments (hash)",
			revert: "DROP INDEX payments_hash_idx",
			want:   []string{"index payments_hash_idx exists live, not in migrations"},
		},
		{
			name:   "dropped trigger",
			change: "DROP TRIGGER payments_touch ON payments",
			revert: "CREATE TRIGGER payments_touch BEFORE UPDATE ON payments FOR EACH ROW EXECUTE FUNCTION touch()",
			want:   []string{"trigger payments.payments_touch missing live"},
		},
		{
			name:   "widened column",
			change: "ALTER TABLE users ALTER COLUMN email TYPE varchar(320)",
			revert: "ALTER TABLE users ALTER COLUMN email TYPE text",
			want:   []string{"column users.email: character varying(320) not null live, text not null expected"},
		},
		{
			name:   "changed default and new column",
			change: "ALTER TABLE users ALTER COLUMN name SET DEFAULT 'y'; ALTER TABLE users ADD COLUMN phone text",
			revert: "ALTER TABLE users ALTER COLUMN name SET DEFAULT 'x'; ALTER TABLE users DROP COLUMN phone",
			want: []string{
				"column users.name: text default 'y'::text live, text default 'x'::text expected",
				"column users.phone exists live, not in migrations",
			},
		},
		{
			name: "altered function body",
			change: `CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at := clock_timestamp(); RETURN NEW; END $$`,
			revert: `CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at := now(); RETURN NEW; END $$`,
			want: []string{"function touch()"},
		},
		{
			name:   "foreign key action",
			change: "ALTER TABLE payments DROP CONSTRAINT payments_user_id_fkey; ALTER TABLE payments ADD CONSTRAINT payments_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE RESTRICT",
			revert: "ALTER TABLE payments DROP CONSTRAINT payments_user_id_fkey; ALTER TABLE payments ADD CONSTRAINT payments_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE",
			want:   []string{"constraint payments.payments_user_id_fkey: FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE RESTRICT live, FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE expected"},
		},
		{
			name:   "sequence increment",
			change: "ALTER SEQUENCE invoice_no INCREMENT BY 10",
			revert: "ALTER SEQUENCE invoice_no INCREMENT BY 1",
			want:   []string{"sequence invoice_no: bigint increment 10 min 1 max 9223372036854775807 start 1000 cache 1 live, bigint increment 1 min 1 max 9223372036854775807 start 1000 cache 1 expected"},
		},
		{
			name:   "extra sequence",
			change: "CREATE SEQUENCE ticket_no AS integer",
			revert: "DROP SEQUENCE ticket_no",
			want:   []string{"sequence ticket_no exists live, not in migrations"},
		},
		{
			name:   "renamed enum label",
			change: "ALTER TYPE payment_state RENAME VALUE 'paid' TO 'settled'",
			revert: "ALTER TYPE payment_state RENAME VALUE 'settled' TO 'paid'",
			want:   []string{"enum payment_state: 'new', 'settled' live, 'new', 'paid' expected"},
		},
		{
			name:   "policy widened",
			change: "ALTER POLICY payments_owner ON payments USING (true)",
			revert: "ALTER POLICY payments_owner ON payments USING (user_id = current_setting('app.user_id')::bigint)",
			want:   []string{"policy payments.payments_owner: permissive * to public using (true) check () live, permissive * to public using ((user_id = (current_setting('app.user_id'::text))::bigint)) check () expected"},
		},
		{
			name:   "row-level security disabled",
			change: "ALTER TABLE payments DISABLE ROW LEVEL SECURITY",
			revert: "ALTER TABLE payments ENABLE ROW LEVEL SECURITY",
			want:   []string{"table payments: r p live, r p rls expected"},
		},
		{
			name:   "extra policy",
			change: "CREATE POLICY payments_admin ON payments FOR SELECT TO pg_monitor USING (true)",
			revert: "DROP POLICY payments_admin ON payments",
			want:   []string{"policy payments.payments_admin exists live, not in migrations"},
		},
		{
			name:   "extra table",
			change: "CREATE TABLE scratchpad (id int, note text)",
			revert: "DROP TABLE scratchpad",
			want:   []string{"table scratchpad exists live, not in migrations"},
		},
	}
	url, db, m := migrated(t)
	ctx := context.Background()
	cache := &MemCache{}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.change != "" {
				if _, err := db.Exec(tc.change); err != nil {
					t.Fatal(err)
				}
			}
			r, err := Check(ctx, m, db, url, true, cache)
			if err != nil {
				t.Fatal(err)
			}
			// The migrations do not change: replayed once, then cached.
			if want := map[bool]string{true: FromScratch, false: FromCache}[i == 0]; r.Expected != want {
				t.Errorf("expected schema from %q, want %q", r.Expected, want)
			}
			var got []string
			for _, it := range r.Items {
				s := it.String()
				if it.Kind == "function" { // its body is long: the name says enough
					s = it.Kind + " " + it.Name
				}
				got = append(got, s)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("items:\n got %q\nwant %q", got, tc.want)
			}
			if r.Objects < 15 {
				t.Errorf("compared %d objects; the set has more", r.Objects)
			}
			if left := scratchDatabases(t, db); len(left) > 0 {
				t.Errorf("scratch databases left: %v", left)
			}
			if tc.revert == "" {
				return
			}
			if _, err := db.Exec(tc.revert); err != nil {
				t.Fatal(err)
			}
			r, err = Check(ctx, m, db, url, true, cache)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Items) != 0 {
				t.Errorf("after revert: %v", r.Items)
			}
		})
	}
}

// A migration that fails in the scratch database (here: it depends on an
// object created by hand live) fails the check and still drops it.
func TestCheckReplayFailsDropsScratch(t *testing.T) {
	url, db, m := migrated(t)
	if err := os.WriteFile(filepath.Join(m.Path, "00002_payments.sql"), []byte("-- +goose Up\nSELECT no_such_function();\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Check(context.Background(), m, db, url, true, nil)
	if err == nil || !strings.Contains(err.Error(), "replay the applied migrations") {
		t.Fatalf("err = %v, want a replay error", err)
	}
	if left := scratchDatabases(t, db); len(left) > 0 {
		t.Errorf("scratch databases left: %v", left)
	}
}

// A cancelled check (SIGTERM in dbops run) still drops its scratch database.
func TestCheckCancelledDropsScratch(t *testing.T) {
	url, db, m := migrated(t)
	if err := os.WriteFile(filepath.Join(m.Path, "00002_payments.sql"), []byte("-- +goose Up\nSELECT pg_sleep(30);\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := Check(ctx, m, db, url, true, nil); err == nil {
		t.Fatal("a cancelled check succeeded")
	}
	if left := scratchDatabases(t, db); len(left) > 0 {
		t.Errorf("scratch databases left: %v", left)
	}
}

// TestCheckExtensionVersion: an extension updated by hand is reported with
// both versions and the review SQL; putting the version back clears it.
func TestCheckExtensionVersion(t *testing.T) {
	url, db, m := migrated(t)
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pg_available_extension_versions WHERE name = 'hstore' AND version IN ('1.7', '1.8')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Skip("the server has no hstore 1.7 and 1.8 (contrib): extension versions not tested")
	}
	// A migration of its own, applied to the live database as to the scratch one.
	if err := os.WriteFile(filepath.Join(m.Path, "00003_not_yet.sql"), []byte("-- +goose Up\nCREATE EXTENSION hstore VERSION '1.7';\n-- +goose Down\nDROP EXTENSION hstore;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m.Target = spec.Target{Pinned: true, Version: 3}
	ctx := context.Background()
	eng := postgres.EngineFor(m)
	live, err := eng.Observe(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	p, err := eng.Diff(live)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Migrate(ctx, db, p, time.Second, postgres.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, sql string
		want      []string
	}{
		{"as migrated", "", nil},
		{"updated by hand", "ALTER EXTENSION hstore UPDATE TO '1.8'", []string{"extension hstore: 1.8 live, 1.7 expected\nALTER EXTENSION \"hstore\" UPDATE TO '1.7';"}},
		{"put back", "DROP EXTENSION hstore; CREATE EXTENSION hstore VERSION '1.7'", nil},
	}
	cache := &MemCache{}
	for _, tc := range tests {
		if tc.sql != "" {
			if _, err := db.Exec(tc.sql); err != nil {
				t.Fatal(err)
			}
		}
		r, err := Check(ctx, m, db, url, true, cache)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range r.Items {
			got = append(got, it.String()+"\n"+it.SQL)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: items %q, want %q", tc.name, got, tc.want)
		}
	}
}
