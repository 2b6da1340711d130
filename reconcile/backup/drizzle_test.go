package backup

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/spec"
)

// loadStack writes files into a temporary folder, loads stack.yaml with
// spec.Load (as dbops does) and returns its only stack.
func loadStack(t *testing.T, files map[string]string, env map[string]string) *spec.Stack {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := spec.Load([]string{filepath.Join(dir, "stack.yaml")}, spec.Options{Root: dir,
		Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stacks) != 1 {
		t.Fatalf("%d stacks, want 1", len(res.Stacks))
	}
	return &res.Stacks[0]
}

// TestPostgresBackupMigrationLevel: NewJob carries a stack's migration
// format and table into the job, and the manifest of its backup records the
// level of that format: goose's version, or for drizzle the last created_at
// of drizzle's schema-qualified table (migrations.schema and .table).
func TestPostgresBackupMigrationLevel(t *testing.T) {
	const journal = `{"version":"7","dialect":"postgresql","entries":[
{"idx":0,"version":"7","when":1700000000000,"tag":"0000_init","breakpoints":true},
{"idx":1,"version":"7","when":1700000005000,"tag":"0001_more","breakpoints":true}]}`
	tests := []struct {
		name       string
		migrations string
		files      map[string]string
		setup      string
		wantTable  string
		wantFormat string
		wantLevel  int64
	}{
		{
			name:       "drizzle own schema and table",
			migrations: "dir: ./drizzle\n      schema: app_meta\n      table: applied",
			files: map[string]string{"drizzle/meta/_journal.json": journal,
				"drizzle/0000_init.sql": "CREATE TABLE users (id int);", "drizzle/0001_more.sql": "CREATE TABLE orders (id int);"},
			setup: `CREATE SCHEMA app_meta;
CREATE TABLE app_meta.applied (id serial PRIMARY KEY, hash text NOT NULL, created_at bigint);
INSERT INTO app_meta.applied (hash, created_at) VALUES ('a', 1700000000000), ('b', 1700000005000);
CREATE TABLE users (id int); CREATE TABLE orders (id int);`,
			wantTable: `"app_meta"."applied"`, wantFormat: spec.FormatDrizzle, wantLevel: 1700000005000,
		},
		{
			name:       "drizzle defaults",
			migrations: "dir: ./drizzle",
			files: map[string]string{"drizzle/meta/_journal.json": journal,
				"drizzle/0000_init.sql": "CREATE TABLE users (id int);", "drizzle/0001_more.sql": "CREATE TABLE orders (id int);"},
			setup: `CREATE SCHEMA drizzle;
CREATE TABLE drizzle.__drizzle_migrations (id serial PRIMARY KEY, hash text NOT NULL, created_at bigint);
INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES ('a', 1700000000000);
CREATE TABLE users (id int);`,
			wantTable: `"drizzle"."__drizzle_migrations"`, wantFormat: spec.FormatDrizzle, wantLevel: 1700000000000,
		},
		{
			name:       "goose",
			migrations: "dir: ./migrations",
			files:      map[string]string{"migrations/00001_init.sql": "-- +goose Up\nCREATE TABLE users (id int);"},
			setup: `CREATE TABLE goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp DEFAULT now());
INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (1, true);
CREATE TABLE users (id int);`,
			wantTable: DefaultMigrationTable, wantFormat: spec.FormatGoose, wantLevel: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			src := testsrv.PostgresDB(t)
			execSQL(t, src, tc.setup)
			dest := t.TempDir()
			files := map[string]string{"stack.yaml": `apiVersion: dbops/v1
kind: Stack
metadata: {name: shop}
spec:
  postgres:
    url: ${PG_URL}
    migrations:
      ` + tc.migrations + `
  backups:
    - {name: pg, source: postgres, schedule: "@daily", destination: "` + dest + `", retention: {keepLast: 3}}
`}
			for k, v := range tc.files {
				files[k] = v
			}
			st := loadStack(t, files, map[string]string{"PG_URL": src})
			job := NewJob(st, st.Spec.Backups[0])
			if job.MigrationTable != tc.wantTable || job.MigrationFormat != tc.wantFormat {
				t.Errorf("NewJob: table %s, format %s; want %s, %s", job.MigrationTable, job.MigrationFormat, tc.wantTable, tc.wantFormat)
			}
			m, err := Run(ctx, job, Options{})
			if err != nil {
				t.Fatal(err)
			}
			switch v := m.MigrationVersion; {
			case v == nil:
				t.Errorf("manifest has no migration version, want %d", tc.wantLevel)
			case *v != tc.wantLevel:
				t.Errorf("manifest migration version %d, want %d", *v, tc.wantLevel)
			}
		})
	}
}
