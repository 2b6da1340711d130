package reconcile_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
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
	// The client tools' folder may differ from the server's (the matrix runs
	// an npm PostgreSQL 18 server with separate 18.6 clients on PATH).
	pgDump, err := exec.LookPath("pg_dump")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(pgDump, "--schema-only", "--no-owner", url).Output()
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
			f := clitest.NewFixture(t, nil)
			out := filepath.Join(f.Dir, "migrations")
			d.WriteSchema(t, drizzleSchemaV1)
			d.Generate(t, out, "init", tt.prefix)
			tblName := strings.Trim(tt.table[strings.LastIndex(tt.table, ".")+1:], `"`)
			if tt.table == `"drizzle"."__drizzle_migrations"` {
				tblName = ""
			}
			yaml := clitest.StackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations:\n      dir: migrations"+tt.yaml+"\n")

			// 1. drizzle's migrator migrates; dbops sees the database in sync.
			urlA := testsrv.PostgresDB(t)
			d.Migrate(t, urlA, out, tblName, tt.schema)
			f.Env["PG_URL"] = urlA
			p := plan(t, load(t, f, yaml))
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
			stacks := load(t, f, yaml)
			p = plan(t, stacks)
			text := planText(p)
			for _, want := range []string{"+ up   " + entries[1].Tag, "migration level " + entries[0].Tag + " → " + entries[1].Tag} {
				if !strings.Contains(text, want) {
					t.Errorf("plan lacks %q:\n%s", want, text)
				}
			}
			js, _ := json.Marshal(p)
			clitest.CheckPlanJSON(t, string(js), 1)
			mustApply(t, stacks, p)
			rows := drizzleRows(t, urlA, tt.table)
			d.Migrate(t, urlA, out, tblName, tt.schema) // would fail on "disputes" already existing
			if again := drizzleRows(t, urlA, tt.table); !slices.Equal(rows, again) || len(again) != 2 {
				t.Errorf("drizzle's migrator changed the rows dbops wrote: %v, then %v", rows, again)
			}

			// 3. fresh databases: dbops and drizzle leave the same schema and rows.
			urlB, urlC := testsrv.PostgresDB(t), testsrv.PostgresDB(t)
			f.Env["PG_URL"] = urlB
			stacks = load(t, f, yaml)
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

// TestDrizzleMigratorWaitsForDbops: drizzle's migrator started while dbops
// applies waits for dbops' lock on the migrations table, then finds
// nothing to do (no migration run twice, no duplicate row).
func TestDrizzleMigratorWaitsForDbops(t *testing.T) {
	d := testsrv.NewDrizzle(t)
	f := drizzleFixture(t, "0000_a", "CREATE TABLE a (id int);",
		"0001_slow", "SELECT pg_sleep(2);\n--> statement-breakpoint\nCREATE TABLE slow (id int);")
	url := testsrv.PostgresDB(t)
	f.Env["PG_URL"] = url
	yaml := func(extra string) string {
		return clitest.StackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations:\n      dir: migrations"+extra+"\n")
	}
	stacks := load(t, f, yaml("\n      target: \"0000_a\""))
	mustApply(t, stacks, plan(t, stacks))

	stacks = load(t, f, yaml(""))
	p := plan(t, stacks)
	applied := make(chan *reconcile.Result)
	go func() { applied <- reconcile.Apply(context.Background(), stacks, p, reconcile.Options{}) }()
	db := testsrv.OpenDB(t, url)
	for n := 0; n == 0; {
		db.QueryRow("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(2)%'").Scan(&n)
	}
	d.Migrate(t, url, filepath.Join(f.Dir, "migrations"), "", "") // fails if it ran 0001_slow again
	if res := <-applied; res.Failed() {
		t.Fatalf("dbops apply failed: %+v", res.Stacks)
	}
	if rows := drizzleRows(t, url, `"drizzle"."__drizzle_migrations"`); len(rows) != 2 {
		t.Errorf("rows %v, want one per migration", rows)
	}
}
