package reconcile_test

import (
	"strings"
	"testing"

	"github.com/amanat/dbops/reconcile/internal/testsrv"
)

// TestPlanPG18Syntax: a migration in PostgreSQL 18 syntax the SQL parser
// does not know is planned as risky with that reason, not a bare syntax
// error.
func TestPlanPG18Syntax(t *testing.T) {
	f := newFixture(t, map[string]string{
		"00001_virtual.sql":  mig("CREATE TABLE prices (net numeric, gross numeric GENERATED ALWAYS AS (net * 1.2) VIRTUAL);", "DROP TABLE prices;"),
		"00002_temporal.sql": mig("CREATE TABLE rooms (id int, during tstzrange, PRIMARY KEY (id, during WITHOUT OVERLAPS));", "DROP TABLE rooms;"),
	})
	f.env["PG_URL"] = testsrv.PostgresDB(t)
	stacks := f.load(t, stackYAML("s", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: ./migrations}\n"))
	p := plan(t, stacks)
	for res, construct := range map[string]string{"postgres.migration.1": "VIRTUAL", "postgres.migration.2": "WITHOUT OVERLAPS"} {
		c, ok := riskOf(p, res)
		if !ok || !strings.HasPrefix(c.Risk, "cannot analyse (PostgreSQL 18 syntax not known to the parser): line 2: ") || !strings.Contains(c.Risk, construct) {
			t.Errorf("%s: risk %q, want PostgreSQL 18 syntax naming %s\n%s", res, c.Risk, construct, planText(p))
		}
	}
}
