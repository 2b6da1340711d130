package reconcile_test

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/render"
)

// TestBaseline: a database that predates dbops is refused until a
// baseline says where it is; then the migrations up to it are recorded,
// the rest run, and the baseline is ignored from then on.
func TestBaseline(t *testing.T) {
	testsrv.Servers(t)
	tests := []struct {
		name, baseline, noBaseline, line, now string
		fixture                               func(t *testing.T) *clitest.Fixture
		versionTable                          string
		ledger                                map[int64]string // dbops' checksum ledger: goose only
	}{
		{
			name: "goose", baseline: "2",
			noBaseline: "database has 2 tables but no goose_db_version: set migrations.baseline to the goose version it is at",
			line:       "= baseline: record 1–2 as applied, run 3 (no goose_db_version)",
			fixture: func(t *testing.T) *clitest.Fixture {
				return clitest.NewFixture(t, map[string]string{
					"00001_a.sql": clitest.Mig("CREATE TABLE a (id int);", "DROP TABLE a;"),
					"00002_b.sql": clitest.Mig("CREATE TABLE b (id int);", "DROP TABLE b;"),
					"00003_c.sql": clitest.Mig("CREATE TABLE c (id int);", "DROP TABLE c;"),
				})
			},
			versionTable: "goose_db_version",
			now:          "postgres now at migration version 3",
			ledger:       map[int64]string{1: "adoption", 2: "adoption", 3: "applied"},
		},
		{
			name: "drizzle", baseline: "0001_b",
			noBaseline: "database has 2 tables but no drizzle.__drizzle_migrations: set migrations.baseline to the drizzle tag it is at",
			line:       "= baseline: record 0000_a–0001_b as applied, run 0002_c (no drizzle.__drizzle_migrations)",
			fixture: func(t *testing.T) *clitest.Fixture {
				return drizzleFixture(t, "0000_a", "CREATE TABLE a (id int);", "0001_b", "CREATE TABLE b (id int);", "0002_c", "CREATE TABLE c (id int);")
			},
			versionTable: "drizzle.__drizzle_migrations",
			now:          "postgres now at migration level 0002_c",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.fixture(t)
			url := testsrv.PostgresDB(t)
			f.Env["PG_URL"] = url
			db := testsrv.OpenDB(t, url)
			if _, err := db.Exec("CREATE TABLE a (id int); CREATE TABLE b (id int)"); err != nil {
				t.Fatal(err)
			}
			yaml := func(extra string) string {
				return clitest.StackYAML("old", "  postgres:\n    url: ${PG_URL}\n    migrations:\n      dir: migrations"+extra+"\n")
			}
			p := plan(t, load(t, f, yaml("")))
			if errs := p.Stacks[0].Errors.Join("\n"); !strings.Contains(errs, tt.noBaseline) {
				t.Fatalf("plan errors %q, want %q", errs, tt.noBaseline)
			}
			stacks := load(t, f, yaml("\n      baseline: \""+tt.baseline+"\""))
			p = plan(t, stacks)
			if text := planText(p); !strings.Contains(text, tt.line) {
				t.Fatalf("plan lacks %q:\n%s", tt.line, text)
			}
			js, _ := json.Marshal(p)
			clitest.CheckPlanJSON(t, string(js), 2)
			var exists bool
			if err := db.QueryRow("SELECT to_regclass($1) IS NOT NULL", tt.versionTable).Scan(&exists); err != nil || exists {
				t.Fatalf("plan created %s (%v)", tt.versionTable, err)
			}
			res := mustApply(t, stacks, p)
			if len(res.Stacks[0].Changes) != 2 {
				t.Errorf("apply results %+v, want the baseline and one migration", res.Stacks[0].Changes)
			}
			var out strings.Builder
			render.ResultText(&out, res, render.Style{})
			if !strings.Contains(out.String(), tt.now) { // goose's Provider used to close the handle this is read with
				t.Errorf("apply output lacks %q:\n%s", tt.now, out.String())
			}
			if err := db.QueryRow("SELECT to_regclass('c') IS NOT NULL").Scan(&exists); err != nil || !exists {
				t.Errorf("migration after the baseline did not run (%v)", err)
			}
			if got := ledger(t, db); !maps.Equal(got, tt.ledger) {
				t.Errorf("checksum ledger %v, want %v", got, tt.ledger)
			}
			// Once recorded, the baseline is ignored: in sync, nothing re-recorded.
			p = plan(t, stacks)
			if sp := p.Stacks[0]; len(sp.Errors) > 0 || len(sp.Changes) > 0 {
				t.Errorf("plan after baseline: errors %v changes %v", sp.Errors, sp.Changes)
			}
		})
	}
}

// TestFailedFirstApplyLeavesNoVersionTable: a first apply that fails
// leaves the database as it found it, version table included.
func TestFailedFirstApplyLeavesNoVersionTable(t *testing.T) {
	testsrv.Servers(t)
	bad := "CREATE TABLE a (id int);" // already exists
	tests := []struct {
		name, baseline, table string
		fixture               func(t *testing.T) *clitest.Fixture
		existing              bool
		// emptyTable: goose's table is there with its version 0 row only
		// (an earlier goose run failed); it must stay so.
		emptyTable bool
	}{
		{name: "goose, fresh database", table: "goose_db_version", fixture: func(t *testing.T) *clitest.Fixture {
			return clitest.NewFixture(t, map[string]string{"00001_a.sql": clitest.Mig("SELECT * FROM no_such_table;", "")})
		}},
		{name: "goose, baseline", table: "goose_db_version", baseline: "1", existing: true, fixture: func(t *testing.T) *clitest.Fixture {
			return clitest.NewFixture(t, map[string]string{"00001_a.sql": clitest.Mig("CREATE TABLE a (id int);", ""), "00002_a.sql": clitest.Mig(bad, "")})
		}},
		{name: "goose, empty version table, baseline", table: "goose_db_version", baseline: "1", existing: true, emptyTable: true, fixture: func(t *testing.T) *clitest.Fixture {
			return clitest.NewFixture(t, map[string]string{"00001_a.sql": clitest.Mig("CREATE TABLE a (id int);", ""), "00002_a.sql": clitest.Mig(bad, "")})
		}},
		{name: "drizzle, fresh database", table: "drizzle.__drizzle_migrations", fixture: func(t *testing.T) *clitest.Fixture {
			return drizzleFixture(t, "0000_a", "CREATE TABLE z (id int);\n--> statement-breakpoint\nSELECT * FROM no_such_table;")
		}},
		{name: "drizzle, baseline", table: "drizzle.__drizzle_migrations", baseline: "0000_a", existing: true, fixture: func(t *testing.T) *clitest.Fixture {
			return drizzleFixture(t, "0000_a", "CREATE TABLE a (id int);", "0001_b", bad)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.fixture(t)
			url := testsrv.PostgresDB(t)
			f.Env["PG_URL"] = url
			db := testsrv.OpenDB(t, url)
			if tt.existing {
				if _, err := db.Exec("CREATE TABLE a (id int)"); err != nil {
					t.Fatal(err)
				}
			}
			if tt.emptyTable {
				if _, err := db.Exec(`CREATE TABLE goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp DEFAULT now());
					INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true)`); err != nil {
					t.Fatal(err)
				}
			}
			extra := ""
			if tt.baseline != "" {
				extra = "\n      baseline: \"" + tt.baseline + "\""
			}
			stacks := load(t, f, clitest.StackYAML("x", "  postgres:\n    url: ${PG_URL}\n    migrations:\n      dir: migrations"+extra+"\n"))
			p := plan(t, stacks)
			if len(p.Stacks[0].Errors) > 0 {
				t.Fatalf("plan: %v", p.Stacks[0].Errors)
			}
			res := reconcile.Apply(context.Background(), stacks, p, reconcile.Options{})
			if !res.Failed() {
				t.Fatal("apply succeeded, want a failure")
			}
			var out strings.Builder
			render.ResultText(&out, res, render.Style{})
			t.Log(out.String())
			var exists bool
			if tt.emptyTable {
				var rows []int64
				r, err := db.Query("SELECT version_id FROM goose_db_version ORDER BY id")
				if err != nil {
					t.Fatal(err)
				}
				for r.Next() {
					var v int64
					r.Scan(&v)
					rows = append(rows, v)
				}
				r.Close()
				if len(rows) != 1 || rows[0] != 0 {
					t.Errorf("goose_db_version holds versions %v after a failed first apply, want only its row 0 as before", rows)
				}
				return
			}
			if err := db.QueryRow("SELECT to_regclass($1) IS NOT NULL", tt.table).Scan(&exists); err != nil || exists {
				t.Errorf("a failed first apply left %s behind (%v)", tt.table, err)
			}
		})
	}
}
