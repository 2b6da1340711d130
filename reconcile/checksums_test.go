package reconcile_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
)

// gooseUp migrates like the goose CLI would, without dbops.
func gooseUp(t *testing.T, db *sql.DB, dir string, to int64) {
	t.Helper()
	p, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS(dir), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(context.Background(), to); err != nil {
		t.Fatalf("goose up to %d: %v", to, err)
	}
}

// ledger reads the checksum ledger: version → source.
func ledger(t *testing.T, db *sql.DB) map[int64]string {
	t.Helper()
	var exists bool
	if err := db.QueryRow("SELECT to_regclass('goose_db_version_dbops_checksums') IS NOT NULL").Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		return nil
	}
	rows, err := db.Query("SELECT version_id, source FROM goose_db_version_dbops_checksums")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]string{}
	for rows.Next() {
		var v int64
		var s string
		if err := rows.Scan(&v, &s); err != nil {
			t.Fatal(err)
		}
		out[v] = s
	}
	return out
}

// A database goose migrated before dbops is adopted: plan (read-only)
// proposes to record the checksums, apply records them "at adoption" and
// those of the migrations it runs as verified; an applied file edited later
// is a plan error naming it, which repair clears. goose's table keeps its
// columns, and goose keeps working on the database.
func TestChecksumLedger(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
	f.Write(t, "stack.yaml", clitest.CLIStack)
	db := testsrv.OpenDB(t, pgURL)
	gooseUp(t, db, filepath.Join(f.Dir, "migrations"), 2)

	res := f.Run(t, "plan", "stack.yaml")
	if res.Code != 0 || !strings.Contains(res.Stdout, "+ record goose_db_version_dbops_checksums: 2 applied migration(s) without checksum (00001_users.sql … 00002_orders.sql) → recorded at adoption") {
		t.Fatalf("plan of a database goose migrated: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	if l := ledger(t, db); l != nil {
		t.Fatalf("plan created the ledger: %v", l)
	}
	// record, migration 3 and clitest.CLIStack's two Redis settings, in the schema
	clitest.CheckPlanJSON(t, f.Run(t, "plan", "--format", "json", "stack.yaml").Stdout, 4)

	if res := f.Run(t, "apply", "--auto-approve", "stack.yaml"); res.Code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	want := map[int64]string{1: "adoption", 2: "adoption", 3: "applied"}
	if l := ledger(t, db); len(l) != 3 || l[1] != want[1] || l[2] != want[2] || l[3] != want[3] {
		t.Errorf("ledger %v, want %v", l, want)
	}
	res = f.Run(t, "plan", "--detailed-exitcode", "stack.yaml")
	if res.Code != 0 || !strings.Contains(res.Stdout, "checksums of applied migrations: 1 verified, 2 recorded at adoption, 0 changed, 0 not recorded") {
		t.Errorf("plan after apply: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}

	// An applied migration is edited.
	edited := strings.Replace(clitest.ThreeMigrations["00002_orders.sql"], "data jsonb", "data jsonb NOT NULL", 1)
	f.Write(t, "migrations/00002_orders.sql", edited)
	res = f.Run(t, "plan", "stack.yaml")
	if res.Code != 1 || !strings.Contains(res.Stdout, "1 applied migration(s) changed since they were applied: 00002_orders.sql (sha256") ||
		!strings.Contains(res.Stdout, "dbops migrations repair shop") {
		t.Errorf("plan with an edited applied migration: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	if errs := plan(t, load(t, f, clitest.CLIStack)).Stacks[0].Errors; len(errs) != 1 || !errors.Is(errs[0], reconcile.ErrPermanent) {
		t.Errorf("edited applied migration: errors %q, want one permanent", errs.Join("; "))
	}
	if res := f.Run(t, "apply", "--auto-approve", "stack.yaml"); res.Code != 1 {
		t.Errorf("apply with an edited applied migration: exit %d\n%s", res.Code, res.Stdout)
	}

	res = f.Run(t, "migrations", "repair", "shop", "stack.yaml")
	if res.Code != 0 || !strings.Contains(res.Stdout, "re-recorded 00002_orders.sql (version 2): sha256 ") ||
		!strings.Contains(res.Stdout, "1 checksum(s) re-recorded") {
		t.Fatalf("repair: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	if l := ledger(t, db); l[2] != "repair" || l[1] != "adoption" || l[3] != "applied" {
		t.Errorf("ledger after repair %v", l)
	}
	if res := f.Run(t, "plan", "--detailed-exitcode", "stack.yaml"); res.Code != 0 {
		t.Errorf("plan after repair: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}

	var cols []string
	rows, err := db.Query("SELECT column_name FROM information_schema.columns WHERE table_name = 'goose_db_version' ORDER BY ordinal_position")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c string
		rows.Scan(&c)
		cols = append(cols, c)
	}
	rows.Close()
	if want := []string{"id", "version_id", "is_applied", "tstamp"}; !slices.Equal(cols, want) {
		t.Errorf("goose_db_version columns %v, want goose's own %v", cols, want)
	}
	// goose itself still reads and writes the database.
	f.Write(t, "migrations/00004_more.sql", clitest.Mig("CREATE TABLE more (id int);", "DROP TABLE more;"))
	gooseUp(t, db, filepath.Join(f.Dir, "migrations"), 4)
	if v := clitest.DBVersion(t, pgURL); v != 4 {
		t.Errorf("version %d after goose up, want 4", v)
	}
}
