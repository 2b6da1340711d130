package reconcile_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/internal/testsrv"
	"github.com/amanat/dbops/spec"
)

const drizzleSchemaV1 = `import { pgTable, serial, text, integer, timestamp, index } from "drizzle-orm/pg-core";
export const users = pgTable("users", {
  id: serial("id").primaryKey(),
  email: text("email").notNull().unique(),
});
export const orders = pgTable("orders", {
  id: serial("id").primaryKey(),
  userId: integer("user_id").references(() => users.id),
  createdAt: timestamp("created_at").defaultNow(),
}, (t) => [index("orders_user_idx").on(t.userId)]);
`

const drizzleSchemaV2 = drizzleSchemaV1 + `export const disputes = pgTable("disputes", {
  id: serial("id").primaryKey(),
  orderId: integer("order_id").notNull().references(() => orders.id),
  reason: text("reason"),
});
`

// drizzleRow is one row of drizzle's migrations table.
type drizzleRow struct {
	ID        int64
	Hash      string
	CreatedAt int64
}

func drizzleRows(t *testing.T, url, table string) []drizzleRow {
	t.Helper()
	db := testsrv.OpenDB(t, url)
	rows, err := db.QueryContext(context.Background(), "SELECT id, hash, created_at FROM "+table+" ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []drizzleRow
	for rows.Next() {
		var r drizzleRow
		if err := rows.Scan(&r.ID, &r.Hash, &r.CreatedAt); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// schemaDump is `pg_dump --schema-only` of the database, without the
// random \restrict key pg_dump 18 writes.
func schemaDump(t *testing.T, url string) string {
	t.Helper()
	bin, err := testsrv.FindPostgresBin()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(bin, "pg_dump"), "--schema-only", "--no-owner", url).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	var keep []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, `\restrict`) && !strings.HasPrefix(line, `\unrestrict`) {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

// TestDrizzleTakesTurnsWithDrizzleTools generates migrations with the real
// drizzle-kit and applies them with drizzle-orm's migrator and with dbops,
// in both file prefix styles and with drizzle's default and custom tables.
func TestDrizzleTakesTurnsWithDrizzleTools(t *testing.T) {
	tests := []struct {
		name, prefix, table, schema, yaml string
	}{
		{name: "index prefix, default table", prefix: "index", table: `"drizzle"."__drizzle_migrations"`},
		{name: "timestamp prefix, custom table", prefix: "timestamp", table: `"ops"."migs"`, schema: "ops",
			yaml: "\n      table: migs\n      schema: ops"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := testsrv.NewDrizzle(t)
			f := newFixture(t, nil)
			out := filepath.Join(f.dir, "migrations")
			d.WriteSchema(t, drizzleSchemaV1)
			d.Generate(t, out, "init", tt.prefix)
			tblName := strings.Trim(tt.table[strings.LastIndex(tt.table, ".")+1:], `"`)
			if tt.table == `"drizzle"."__drizzle_migrations"` {
				tblName = ""
			}
			yaml := stackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations:\n      dir: migrations"+tt.yaml+"\n")

			// 1. drizzle's migrator migrates; dbops sees the database in sync.
			urlA := testsrv.PostgresDB(t)
			d.Migrate(t, urlA, out, tblName, tt.schema)
			f.env["PG_URL"] = urlA
			p := plan(t, f.load(t, yaml))
			sp := p.Stacks[0]
			if len(sp.Errors) > 0 || len(sp.Changes) > 0 {
				t.Fatalf("plan after drizzle's migrator: errors %v, changes %v", sp.Errors, sp.Changes)
			}
			entries, err := spec.ReadJournal(out)
			if err != nil {
				t.Fatal(err)
			}
			if sp.Postgres.Format != spec.FormatDrizzle || sp.Postgres.LevelBefore != entries[0].Tag {
				t.Errorf("format %q level %q, want drizzle at %s", sp.Postgres.Format, sp.Postgres.LevelBefore, entries[0].Tag)
			}

			// 2. a new migration applied by dbops; drizzle then has nothing to do.
			d.WriteSchema(t, drizzleSchemaV2)
			gen := d.Generate(t, out, "add_disputes", tt.prefix)
			if entries, err = spec.ReadJournal(out); err != nil || len(entries) != 2 {
				t.Fatalf("journal: %v %v; drizzle-kit said:\n%s", entries, err, gen)
			}
			stacks := f.load(t, yaml)
			p = plan(t, stacks)
			text := planText(p)
			for _, want := range []string{"+ up   " + entries[1].Tag, "migration level " + entries[0].Tag + " → " + entries[1].Tag} {
				if !strings.Contains(text, want) {
					t.Errorf("plan lacks %q:\n%s", want, text)
				}
			}
			js, _ := json.Marshal(p)
			checkPlanJSON(t, string(js), 1)
			mustApply(t, stacks, p)
			rows := drizzleRows(t, urlA, tt.table)
			d.Migrate(t, urlA, out, tblName, tt.schema) // would fail on "disputes" already existing
			if again := drizzleRows(t, urlA, tt.table); !slices.Equal(rows, again) || len(again) != 2 {
				t.Errorf("drizzle's migrator changed the rows dbops wrote: %v, then %v", rows, again)
			}

			// 3. fresh databases: dbops and drizzle leave the same schema and rows.
			urlB, urlC := testsrv.PostgresDB(t), testsrv.PostgresDB(t)
			f.env["PG_URL"] = urlB
			stacks = f.load(t, yaml)
			mustApply(t, stacks, plan(t, stacks))
			d.Migrate(t, urlC, out, tblName, tt.schema)
			if a, b := schemaDump(t, urlB), schemaDump(t, urlC); a != b {
				t.Errorf("schema after dbops differs from schema after drizzle:\n--- dbops\n%s\n--- drizzle\n%s", a, b)
			}
			a, b := drizzleRows(t, urlB, tt.table), drizzleRows(t, urlC, tt.table)
			if !slices.Equal(a, b) || len(a) != 2 {
				t.Errorf("migration rows differ:\ndbops   %v\ndrizzle %v", a, b)
			}
			for i, e := range entries {
				if a[i].CreatedAt != e.When {
					t.Errorf("row %d created_at %d, want the journal's when %d", i, a[i].CreatedAt, e.When)
				}
			}
		})
	}
}

// drizzleFixture writes a drizzle-kit style folder by hand: journal order
// deliberately differs from file name order.
func drizzleFixture(t *testing.T, files ...string) *fixture {
	t.Helper()
	f := newFixture(t, nil)
	var entries []string
	for i := 0; i < len(files); i += 2 {
		f.write(t, filepath.Join("migrations", files[i]+".sql"), files[i+1])
		entries = append(entries, `{"idx":`+strconv.Itoa(i/2)+`,"version":"7","when":`+strconv.Itoa(1700000000000+i*1000)+`,"tag":"`+files[i]+`","breakpoints":true}`)
	}
	f.write(t, "migrations/meta/_journal.json", `{"version":"7","dialect":"postgresql","entries":[`+strings.Join(entries, ",")+`]}`)
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
	f.env["PG_URL"] = url
	yaml := func(extra string) string {
		return stackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations:\n      dir: migrations"+extra+"\n")
	}
	db := testsrv.OpenDB(t, url)
	ctx := context.Background()

	// plan is read-only: nothing created.
	stacks := f.load(t, yaml("\n      target: \"0000_a\""))
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
	stacks = f.load(t, yaml(""))
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
				path := filepath.Join(f.dir, "migrations", tt.edit+".sql")
				orig, _ := os.ReadFile(path)
				f.write(t, filepath.Join("migrations", tt.edit+".sql"), string(orig)+"\n-- edited\n")
				defer os.WriteFile(path, orig, 0o644)
			}
			p := plan(t, f.load(t, yaml(tt.extra)))
			if errs := strings.Join(p.Stacks[0].Errors, "\n"); !strings.Contains(errs, tt.want) {
				t.Errorf("plan errors %q, want %q", errs, tt.want)
			}
		})
	}
}

// TestBaseline: a database that predates dbops is refused until a
// baseline says where it is; then the migrations up to it are recorded,
// the rest run, and the baseline is ignored from then on.
func TestBaseline(t *testing.T) {
	testsrv.Servers(t)
	tests := []struct {
		name, baseline, noBaseline, line string
		fixture                          func(t *testing.T) *fixture
		versionTable                     string
	}{
		{
			name: "goose", baseline: "2",
			noBaseline: "database has 2 tables but no goose_db_version: set migrations.baseline to the goose version it is at",
			line:       "= baseline: record 1–2 as applied, run 3 (no goose_db_version)",
			fixture: func(t *testing.T) *fixture {
				return newFixture(t, map[string]string{
					"00001_a.sql": mig("CREATE TABLE a (id int);", "DROP TABLE a;"),
					"00002_b.sql": mig("CREATE TABLE b (id int);", "DROP TABLE b;"),
					"00003_c.sql": mig("CREATE TABLE c (id int);", "DROP TABLE c;"),
				})
			},
			versionTable: "goose_db_version",
		},
		{
			name: "drizzle", baseline: "0001_b",
			noBaseline: "database has 2 tables but no drizzle.__drizzle_migrations: set migrations.baseline to the drizzle tag it is at",
			line:       "= baseline: record 0000_a–0001_b as applied, run 0002_c (no drizzle.__drizzle_migrations)",
			fixture: func(t *testing.T) *fixture {
				return drizzleFixture(t, "0000_a", "CREATE TABLE a (id int);", "0001_b", "CREATE TABLE b (id int);", "0002_c", "CREATE TABLE c (id int);")
			},
			versionTable: "drizzle.__drizzle_migrations",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.fixture(t)
			url := testsrv.PostgresDB(t)
			f.env["PG_URL"] = url
			db := testsrv.OpenDB(t, url)
			if _, err := db.Exec("CREATE TABLE a (id int); CREATE TABLE b (id int)"); err != nil {
				t.Fatal(err)
			}
			yaml := func(extra string) string {
				return stackYAML("old", "  postgres:\n    url: ${PG_URL}\n    migrations:\n      dir: migrations"+extra+"\n")
			}
			p := plan(t, f.load(t, yaml("")))
			if errs := strings.Join(p.Stacks[0].Errors, "\n"); !strings.Contains(errs, tt.noBaseline) {
				t.Fatalf("plan errors %q, want %q", errs, tt.noBaseline)
			}
			stacks := f.load(t, yaml("\n      baseline: \""+tt.baseline+"\""))
			p = plan(t, stacks)
			if text := planText(p); !strings.Contains(text, tt.line) {
				t.Fatalf("plan lacks %q:\n%s", tt.line, text)
			}
			js, _ := json.Marshal(p)
			checkPlanJSON(t, string(js), 2)
			var exists bool
			if err := db.QueryRow("SELECT to_regclass($1) IS NOT NULL", tt.versionTable).Scan(&exists); err != nil || exists {
				t.Fatalf("plan created %s (%v)", tt.versionTable, err)
			}
			res := mustApply(t, stacks, p)
			if len(res.Stacks[0].Changes) != 2 {
				t.Errorf("apply results %+v, want the baseline and one migration", res.Stacks[0].Changes)
			}
			if err := db.QueryRow("SELECT to_regclass('c') IS NOT NULL").Scan(&exists); err != nil || !exists {
				t.Errorf("migration after the baseline did not run (%v)", err)
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
		fixture               func(t *testing.T) *fixture
		existing              bool
	}{
		{name: "goose, fresh database", table: "goose_db_version", fixture: func(t *testing.T) *fixture {
			return newFixture(t, map[string]string{"00001_a.sql": mig("SELECT * FROM no_such_table;", "")})
		}},
		{name: "goose, baseline", table: "goose_db_version", baseline: "1", existing: true, fixture: func(t *testing.T) *fixture {
			return newFixture(t, map[string]string{"00001_a.sql": mig("CREATE TABLE a (id int);", ""), "00002_a.sql": mig(bad, "")})
		}},
		{name: "drizzle, fresh database", table: "drizzle.__drizzle_migrations", fixture: func(t *testing.T) *fixture {
			return drizzleFixture(t, "0000_a", "CREATE TABLE z (id int);\n--> statement-breakpoint\nSELECT * FROM no_such_table;")
		}},
		{name: "drizzle, baseline", table: "drizzle.__drizzle_migrations", baseline: "0000_a", existing: true, fixture: func(t *testing.T) *fixture {
			return drizzleFixture(t, "0000_a", "CREATE TABLE a (id int);", "0001_b", bad)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.fixture(t)
			url := testsrv.PostgresDB(t)
			f.env["PG_URL"] = url
			db := testsrv.OpenDB(t, url)
			if tt.existing {
				if _, err := db.Exec("CREATE TABLE a (id int)"); err != nil {
					t.Fatal(err)
				}
			}
			extra := ""
			if tt.baseline != "" {
				extra = "\n      baseline: \"" + tt.baseline + "\""
			}
			stacks := f.load(t, stackYAML("x", "  postgres:\n    url: ${PG_URL}\n    migrations:\n      dir: migrations"+extra+"\n"))
			p := plan(t, stacks)
			if len(p.Stacks[0].Errors) > 0 {
				t.Fatalf("plan: %v", p.Stacks[0].Errors)
			}
			res := reconcile.Apply(context.Background(), stacks, p, reconcile.Options{})
			if !res.Failed() {
				t.Fatal("apply succeeded, want a failure")
			}
			var out strings.Builder
			res.WriteText(&out, reconcile.Style{})
			t.Log(out.String())
			var exists bool
			if err := db.QueryRow("SELECT to_regclass($1) IS NOT NULL", tt.table).Scan(&exists); err != nil || exists {
				t.Errorf("a failed first apply left %s behind (%v)", tt.table, err)
			}
		})
	}
}

// TestAmanatDrizzleExample: examples/amanat-drizzle works with dbops and
// with drizzle's migrator alike.
func TestAmanatDrizzleExample(t *testing.T) {
	d := testsrv.NewDrizzle(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	urlB, urlC := testsrv.PostgresDB(t), testsrv.PostgresDB(t)
	load := func(url string) []spec.Stack {
		t.Helper()
		env := map[string]string{"PG_URL": url, "REDIS_URL": r.URL()}
		res, err := spec.Load([]string{"../examples/amanat-drizzle"}, spec.Options{Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
		if err != nil {
			t.Fatal(err)
		}
		return res.Stacks
	}
	stacks := load(urlB)
	p := plan(t, stacks)
	if n := len(p.Stacks[0].Changes); n < 20 {
		t.Fatalf("plan on a fresh database has %d changes, want the 20 migrations and more:\n%s", n, planText(p))
	}
	mustApply(t, stacks, p)
	folder, err := filepath.Abs("../examples/amanat-drizzle/drizzle")
	if err != nil {
		t.Fatal(err)
	}
	d.Migrate(t, urlC, folder, "", "")
	if a, b := schemaDump(t, urlB), schemaDump(t, urlC); a != b {
		t.Errorf("schema after dbops differs from schema after drizzle:\n--- dbops\n%s\n--- drizzle\n%s", a, b)
	}
	table := `"drizzle"."__drizzle_migrations"`
	if a, b := drizzleRows(t, urlB, table), drizzleRows(t, urlC, table); !slices.Equal(a, b) || len(a) != 20 {
		t.Errorf("migration rows differ:\ndbops   %v\ndrizzle %v", a, b)
	}
	p = plan(t, load(urlC))
	sp := p.Stacks[0]
	if len(sp.Errors) > 0 || sp.Postgres.LevelBefore != "0019_add_payments_and_notifications_concurrent_indexes" || hasMigration(sp.Changes) {
		t.Errorf("plan after drizzle's migrator: errors %v, level %q, changes %v", sp.Errors, sp.Postgres.LevelBefore, sp.Changes)
	}
}

func hasMigration(changes []reconcile.Change) bool {
	return slices.ContainsFunc(changes, func(c reconcile.Change) bool { return c.Kind == reconcile.ResourceMigration })
}

// TestDrizzleSavedPlanMoved: a saved plan of a drizzle stack is refused
// when the database moved, naming the levels by tag.
func TestDrizzleSavedPlanMoved(t *testing.T) {
	testsrv.Servers(t)
	f := drizzleFixture(t, "0000_a", "CREATE TABLE a (id int);", "0001_b", "CREATE TABLE b (id int);")
	f.env["PG_URL"] = testsrv.PostgresDB(t)
	yaml := func(extra string) string {
		return stackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations:\n      dir: migrations"+extra+"\n")
	}
	saved := &reconcile.Saved{Plan: plan(t, f.load(t, yaml("")))}
	if moved := saved.Moved(plan(t, f.load(t, yaml(""))), saved.Spec); len(moved) > 0 {
		t.Fatalf("nothing moved, but: %v", moved)
	}
	stacks := f.load(t, yaml("\n      target: \"0000_a\""))
	mustApply(t, stacks, plan(t, stacks))
	moved := strings.Join(saved.Moved(plan(t, f.load(t, yaml(""))), saved.Spec), "\n")
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
			f.env["PG_URL"] = url
			if _, err := testsrv.OpenDB(t, url).Exec(tt.setup); err != nil {
				t.Fatal(err)
			}
			p := plan(t, f.load(t, stackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: migrations}\n")))
			if errs := strings.Join(p.Stacks[0].Errors, "\n"); !strings.Contains(errs, tt.want) {
				t.Errorf("plan errors %q, want %q", errs, tt.want)
			}
		})
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestDrizzleMigratorWaitsForDbops: drizzle's migrator started while dbops
// applies waits for dbops' lock on the migrations table, then finds
// nothing to do (no migration run twice, no duplicate row).
func TestDrizzleMigratorWaitsForDbops(t *testing.T) {
	d := testsrv.NewDrizzle(t)
	f := drizzleFixture(t, "0000_a", "CREATE TABLE a (id int);",
		"0001_slow", "SELECT pg_sleep(2);\n--> statement-breakpoint\nCREATE TABLE slow (id int);")
	url := testsrv.PostgresDB(t)
	f.env["PG_URL"] = url
	yaml := func(extra string) string {
		return stackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations:\n      dir: migrations"+extra+"\n")
	}
	stacks := f.load(t, yaml("\n      target: \"0000_a\""))
	mustApply(t, stacks, plan(t, stacks))

	stacks = f.load(t, yaml(""))
	p := plan(t, stacks)
	applied := make(chan *reconcile.Result)
	go func() { applied <- reconcile.Apply(context.Background(), stacks, p, reconcile.Options{}) }()
	db := testsrv.OpenDB(t, url)
	for n := 0; n == 0; {
		db.QueryRow("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(2)%'").Scan(&n)
	}
	d.Migrate(t, url, filepath.Join(f.dir, "migrations"), "", "") // fails if it ran 0001_slow again
	if res := <-applied; res.Failed() {
		t.Fatalf("dbops apply failed: %+v", res.Stacks)
	}
	if rows := drizzleRows(t, url, `"drizzle"."__drizzle_migrations"`); len(rows) != 2 {
		t.Errorf("rows %v, want one per migration", rows)
	}
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
			f.env["PG_URL"] = url
			if _, err := testsrv.OpenDB(t, url).Exec(create + "INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES ('" + tt.hash + "', 1700000000000)"); err != nil {
				t.Fatal(err)
			}
			p := plan(t, f.load(t, stackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: migrations}\n")))
			errs := strings.Join(p.Stacks[0].Errors, "\n")
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
	f.env["PG_URL"] = testsrv.PostgresDB(t)
	yaml := func(extra string) string {
		return stackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations:\n      dir: migrations"+extra+"\n")
	}
	stacks := f.load(t, yaml("\n      target: \"0000_a\""))
	mustApply(t, stacks, plan(t, stacks))
	stacks = f.load(t, yaml(""))
	p := plan(t, stacks)
	res := reconcile.Apply(context.Background(), stacks, p, reconcile.Options{})
	got := map[string]string{}
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
