package reconcile_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
)

// drizzleFixture writes a drizzle-kit style folder by hand: journal order
// deliberately differs from file name order.
func drizzleFixture(t *testing.T, files ...string) *clitest.Fixture {
	t.Helper()
	f := clitest.NewFixture(t, nil)
	var entries []string
	for i := 0; i < len(files); i += 2 {
		f.Write(t, filepath.Join("migrations", files[i]+".sql"), files[i+1])
		entries = append(entries, `{"idx":`+strconv.Itoa(i/2)+`,"version":"7","when":`+strconv.Itoa(1700000000000+i*1000)+`,"tag":"`+files[i]+`","breakpoints":true}`)
	}
	f.Write(t, "migrations/meta/_journal.json", `{"version":"7","dialect":"postgresql","entries":[`+strings.Join(entries, ",")+`]}`)
	return f
}

func TestDrizzlePlanRules(t *testing.T) {
	testsrv.Servers(t)
	f := drizzleFixture(t,
		"0001_b", "CREATE TABLE b (id int);\n--> statement-breakpoint\nINSERT INTO b VALUES (1);",
		"0000_a", "CREATE TABLE a (id int);",
		"0002_c", "CREATE TABLE c (id int);\n--> statement-breakpoint\nCREATE TABLE c2 (id int); CREATE TABLE c3 (id int);",
	)
	url := testsrv.PostgresDB(t)
	f.Env["PG_URL"] = url
	yaml := func(extra string) string {
		return clitest.StackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations:\n      dir: migrations"+extra+"\n")
	}
	db := testsrv.OpenDB(t, url)
	ctx := context.Background()

	// plan is read-only: nothing created.
	stacks := load(t, f, yaml("\n      target: \"0000_a\""))
	p := plan(t, stacks)
	var schema *string
	if err := db.QueryRowContext(ctx, "SELECT to_regnamespace('drizzle')::text").Scan(&schema); err != nil || schema != nil {
		t.Fatalf("plan created the drizzle schema (%v, %v)", schema, err)
	}
	if got := planText(p); !strings.Contains(got, "+ up   0001_b\n") || !strings.Contains(got, "+ up   0000_a\n") || strings.Contains(got, "0002_c") {
		t.Fatalf("plan to target 0000_a (journal order 0001_b, 0000_a) wrong:\n%s", got)
	}
	mustApply(t, stacks, p)

	// on to latest; several statements in one breakpoint chunk run too
	stacks = load(t, f, yaml(""))
	mustApply(t, stacks, plan(t, stacks))
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM c3").Scan(&n); err != nil {
		t.Fatalf("0002_c's second statement did not run: %v", err)
	}

	tests := []struct {
		name, extra, edit, want string
	}{
		{name: "target below the live level", extra: "\n      target: \"0000_a\"",
			want: "target 0000_a is below the live level 0002_c, and drizzle has no down migrations"},
		{name: "edited applied migration", edit: "0001_b",
			want: "0001_b (recorded "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.edit != "" {
				path := filepath.Join(f.Dir, "migrations", tt.edit+".sql")
				orig, _ := os.ReadFile(path)
				f.Write(t, filepath.Join("migrations", tt.edit+".sql"), string(orig)+"\n-- edited\n")
				defer os.WriteFile(path, orig, 0o644)
			}
			p := plan(t, load(t, f, yaml(tt.extra)))
			if errs := p.Stacks[0].Errors.Join("\n"); !strings.Contains(errs, tt.want) {
				t.Errorf("plan errors %q, want %q", errs, tt.want)
			}
			// fix the repository: dbops run waits for a new revision
			if errs := p.Stacks[0].Errors; !errs.Permanent() || !errors.Is(errs[0], reconcile.ErrPermanent) {
				t.Errorf("plan errors %q: not permanent", errs.Join("; "))
			}
		})
	}
}

// TestDrizzleSavedPlanMoved: a saved plan of a drizzle stack is refused
// when the database moved, naming the levels by tag.
func TestDrizzleSavedPlanMoved(t *testing.T) {
	testsrv.Servers(t)
	f := drizzleFixture(t, "0000_a", "CREATE TABLE a (id int);", "0001_b", "CREATE TABLE b (id int);")
	f.Env["PG_URL"] = testsrv.PostgresDB(t)
	yaml := func(extra string) string {
		return clitest.StackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations:\n      dir: migrations"+extra+"\n")
	}
	saved := &reconcile.Saved{Plan: plan(t, load(t, f, yaml("")))}
	if moved := saved.Moved(plan(t, load(t, f, yaml(""))), saved.Spec); len(moved) > 0 {
		t.Fatalf("nothing moved, but: %v", moved)
	}
	stacks := load(t, f, yaml("\n      target: \"0000_a\""))
	mustApply(t, stacks, plan(t, stacks))
	moved := strings.Join(saved.Moved(plan(t, load(t, f, yaml(""))), saved.Spec), "\n")
	if !strings.Contains(moved, "stack shop: postgres migration level was none, now 0000_a") {
		t.Errorf("moved = %q", moved)
	}
}

// TestDrizzlePlanErrors: states of drizzle's table that drizzle's migrator
// would mishandle silently are plan errors naming what to do.
func TestDrizzlePlanErrors(t *testing.T) {
	testsrv.Servers(t)
	table := `"drizzle"."__drizzle_migrations"`
	create := "CREATE SCHEMA drizzle; CREATE TABLE " + table + " (id serial PRIMARY KEY, hash text NOT NULL, created_at bigint);"
	tests := []struct {
		name  string
		files []string // tag, SQL, ... (when = 1700000000000 + 1000*2*index)
		setup string
		want  string
	}{
		{
			name:  "a recorded migration missing from the journal",
			files: []string{"0000_a", "SELECT 1;"},
			setup: create + "INSERT INTO " + table + " (hash, created_at) VALUES ('x', 1600000000000)",
			want:  "has rows with created_at 1600000000000 that match no migration in migrations/meta/_journal.json",
		},
		{
			name:  "a migration drizzle would skip for good",
			files: []string{"0000_a", "SELECT 1;", "0001_b", "SELECT 2;"},
			setup: create + "INSERT INTO " + table + " (hash, created_at) VALUES ('" + sha("SELECT 2;") + "', 1700000002000)",
			want:  "0000_a not recorded in drizzle.__drizzle_migrations but a later migration is (the database is at 0001_b)",
		},
		{
			name:  "a row without created_at",
			files: []string{"0000_a", "SELECT 1;"},
			setup: create + "INSERT INTO " + table + " (hash) VALUES ('x')",
			want:  "row id 1 has no created_at",
		},
		{
			name:  "tables and an empty migrations table",
			files: []string{"0000_a", "SELECT 1;"},
			setup: create + "CREATE TABLE legacy (id int)",
			want:  "database has 1 tables but an empty drizzle.__drizzle_migrations: set migrations.baseline to the drizzle tag it is at (e.g. baseline: 0000_a)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := drizzleFixture(t, tt.files...)
			url := testsrv.PostgresDB(t)
			f.Env["PG_URL"] = url
			if _, err := testsrv.OpenDB(t, url).Exec(tt.setup); err != nil {
				t.Fatal(err)
			}
			p := plan(t, load(t, f, clitest.StackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: migrations}\n")))
			if errs := p.Stacks[0].Errors.Join("\n"); !strings.Contains(errs, tt.want) {
				t.Errorf("plan errors %q, want %q", errs, tt.want)
			}
		})
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestDrizzleHashOfCRLFFile: drizzle-orm 0.45 hashes a CRLF file as it is,
// newer drizzle-orm sources after making its line ends LF; a row written by
// either is the same migration, and any other hash is an edit.
func TestDrizzleHashOfCRLFFile(t *testing.T) {
	testsrv.Servers(t)
	text := "CREATE TABLE a (id int);\r\n--> statement-breakpoint\r\nCREATE TABLE b (id int);\r\n"
	create := `CREATE SCHEMA drizzle; CREATE TABLE drizzle.__drizzle_migrations (id serial PRIMARY KEY, hash text NOT NULL, created_at bigint);
		CREATE TABLE a (id int); CREATE TABLE b (id int);`
	tests := []struct{ name, hash, wantErr string }{
		{name: "as drizzle-orm 0.45 hashes it", hash: sha(text)},
		{name: "with LF line ends", hash: sha(strings.ReplaceAll(text, "\r\n", "\n"))},
		{name: "anything else", hash: sha("CREATE TABLE a (id int);"), wantErr: "0000_a (recorded "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := drizzleFixture(t, "0000_a", text)
			url := testsrv.PostgresDB(t)
			f.Env["PG_URL"] = url
			if _, err := testsrv.OpenDB(t, url).Exec(create + "INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES ('" + tt.hash + "', 1700000000000)"); err != nil {
				t.Fatal(err)
			}
			p := plan(t, load(t, f, clitest.StackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: migrations}\n")))
			errs := p.Stacks[0].Errors.Join("\n")
			if tt.wantErr == "" && (errs != "" || len(p.Stacks[0].Changes) > 0) {
				t.Errorf("plan: errors %q, changes %v; want in sync", errs, p.Stacks[0].Changes)
			}
			if !strings.Contains(errs, tt.wantErr) {
				t.Errorf("plan errors %q, want %q", errs, tt.wantErr)
			}
		})
	}
}

// TestDrizzleRiskyMigrationRefused: risk analysis and its gate apply to
// drizzle migrations: a DROP of a populated table is refused without a
// window or --allow-risky, and the migrations after it wait.
func TestDrizzleRiskyMigrationRefused(t *testing.T) {
	testsrv.Servers(t)
	f := drizzleFixture(t, "0000_a", "CREATE TABLE a (id int);\n--> statement-breakpoint\nINSERT INTO a VALUES (1);",
		"0001_b", "DROP TABLE a;", "0002_c", "CREATE TABLE c (id int);")
	f.Env["PG_URL"] = testsrv.PostgresDB(t)
	yaml := func(extra string) string {
		return clitest.StackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations:\n      dir: migrations"+extra+"\n")
	}
	stacks := load(t, f, yaml("\n      target: \"0000_a\""))
	mustApply(t, stacks, plan(t, stacks))
	stacks = load(t, f, yaml(""))
	p := plan(t, stacks)
	res := reconcile.Apply(context.Background(), stacks, p, reconcile.Options{})
	got := map[string]reconcile.Status{}
	for _, c := range res.Stacks[0].Changes {
		got[c.Name] = c.Status
	}
	if got["0001_b"] != reconcile.StatusRefused || got["0002_c"] != reconcile.StatusRefused {
		t.Errorf("statuses %v, want 0001_b refused (risky) and 0002_c held behind it", got)
	}
	if c, _ := riskOf(p, "postgres.migration.0001_b"); !strings.Contains(c.Risk, "DROP TABLE a") {
		t.Errorf("0001_b risk %q, want the DROP TABLE named", c.Risk)
	}
}

// TestDrizzleBackupBeforeMigrate: backupBeforeMigrate guards drizzle
// migrations as it guards goose ones.
func TestDrizzleBackupBeforeMigrate(t *testing.T) {
	testsrv.Servers(t)
	f := drizzleFixture(t, "0000_a", "CREATE TABLE a (id int);", "0001_b", "CREATE TABLE b (id int);")
	url := testsrv.PostgresDB(t)
	f.Env["PG_URL"] = url
	stacks := load(t, f, clitest.StackYAML("shop", `  postgres:
    url: ${PG_URL}
    migrations: {dir: migrations}
  backupBeforeMigrate: pg
  backups:
    - {name: pg, source: postgres, schedule: "@yearly", destination: `+t.TempDir()+`, retention: {keepLast: 3}}
`))
	o := reconcile.Options{}
	o.Backup.PgDumpPath = "/nonexistent/pg_dump"
	res := reconcile.Apply(context.Background(), stacks, plan(t, stacks), o)
	for _, c := range res.Stacks[0].Changes {
		if c.Kind == reconcile.ResourceMigration && (c.Status != reconcile.StatusFailed || !strings.Contains(c.Error, "backupBeforeMigrate job pg failed")) {
			t.Errorf("migration %s: %s %q, want refused", c.Name, c.Status, c.Error)
		}
	}
	var exists bool
	if err := testsrv.OpenDB(t, url).QueryRow("SELECT to_regclass('a') IS NOT NULL").Scan(&exists); err != nil || exists {
		t.Fatalf("migrated although the backup before migrating failed (%v)", err)
	}
	res = mustApply(t, stacks, plan(t, stacks))
	var order []string
	for _, c := range res.Stacks[0].Changes {
		order = append(order, string(c.Kind)+" "+c.Name)
	}
	if want := "backup pg,postgres.migration 0000_a,postgres.migration 0001_b"; strings.Join(order, ",") != want {
		t.Errorf("applied %v, want %s", order, want)
	}
}
