package reconcile_test

import (
	"context"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/render"
)

// TestPlanPG18Syntax: a migration in PostgreSQL 18 syntax the SQL parser
// does not know is planned as risky with that reason, not a bare syntax
// error; on a PostgreSQL 18 server (the version matrix) apply with
// AllowRisky runs it.
func TestPlanPG18Syntax(t *testing.T) {
	f := clitest.NewFixture(t, map[string]string{
		"00001_virtual.sql":  clitest.Mig("CREATE TABLE prices (net numeric, gross numeric GENERATED ALWAYS AS (net * 1.2) VIRTUAL);", "DROP TABLE prices;"),
		"00002_temporal.sql": clitest.Mig("CREATE TABLE rooms (id int4range, during tstzrange, PRIMARY KEY (id, during WITHOUT OVERLAPS));", "DROP TABLE rooms;"),
	})
	f.Env["PG_URL"] = testsrv.PostgresDB(t)
	stacks := load(t, f, clitest.StackYAML("s", clitest.PGMigrations))
	p := plan(t, stacks)
	for res, construct := range map[string]string{"postgres.migration.1": "VIRTUAL", "postgres.migration.2": "WITHOUT OVERLAPS"} {
		c, ok := riskOf(p, res)
		if !ok || !strings.HasPrefix(c.Risk, "cannot analyse (PostgreSQL 18 syntax not known to the parser): line 2: ") || !strings.Contains(c.Risk, construct) {
			t.Errorf("%s: risk %q, want PostgreSQL 18 syntax naming %s\n%s", res, c.Risk, construct, planText(p))
		}
	}
	var num int
	if err := testsrv.OpenDB(t, f.Env["PG_URL"]).QueryRow("SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
		t.Fatal(err)
	}
	if num < 180000 {
		return // the server would reject the syntax too
	}
	res := reconcile.Apply(context.Background(), stacks, p, reconcile.Options{AllowRisky: true})
	if res.Failed() {
		var b strings.Builder
		render.ResultText(&b, res, render.Style{})
		t.Fatalf("apply on PostgreSQL %d failed:\n%s", num, b.String())
	}
	if v := clitest.DBVersion(t, f.Env["PG_URL"]); v != 2 {
		t.Errorf("version %d after apply, want 2", v)
	}
}

// TestPlanPG18SyntaxDrizzle: the same for a drizzle migration, split on
// its breakpoints, with the line of the file the construct is on.
func TestPlanPG18SyntaxDrizzle(t *testing.T) {
	testsrv.Servers(t)
	f := drizzleFixture(t, "0000_virtual",
		"CREATE TABLE \"users\" (\"id\" serial PRIMARY KEY);\n--> statement-breakpoint\nCREATE TABLE \"prices\" (\n\t\"net\" numeric,\n\t\"gross\" numeric GENERATED ALWAYS AS (net * 1.2) VIRTUAL\n);")
	f.Env["PG_URL"] = testsrv.PostgresDB(t)
	stacks := load(t, f, clitest.StackYAML("s", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: migrations}\n"))
	p := plan(t, stacks)
	c, ok := riskOf(p, "postgres.migration.0000_virtual")
	if !ok || !strings.HasPrefix(c.Risk, "cannot analyse (PostgreSQL 18 syntax not known to the parser): line 5: ") || !strings.Contains(c.Risk, "VIRTUAL") {
		t.Errorf("risk %q, want PostgreSQL 18 syntax at line 5 naming VIRTUAL\n%s", c.Risk, planText(p))
	}
}
