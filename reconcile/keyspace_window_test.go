package reconcile_test

import (
	"context"
	"testing"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
)

// TestKeyspaceJobHeldWithItsMigration: a job after a risky migration that
// is deferred to a maintenance window is deferred with it (not a failure)
// and deletes nothing.
func TestKeyspaceJobHeldWithItsMigration(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := r.Client(t)
	fill(t, c, "t:", 10)
	fill(t, c, "keep:", 30)
	f := clitest.NewFixture(t, map[string]string{
		"00001_t.sql": clitest.Mig("CREATE TABLE t (id int); INSERT INTO t VALUES (1);", "DROP TABLE t;"),
	})
	f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
	st := load(t, f, clitest.StackYAML("s", clitest.PGMigrations))
	mustApply(t, st, plan(t, st))
	f.Write(t, "migrations/00002_drop.sql", clitest.Mig("DROP TABLE t;", "CREATE TABLE t (id int);"))
	st = load(t, f, clitest.StackYAML("s", `  postgres:
    url: ${PG_URL}
    migrations: {dir: ./migrations}
  redis:
    url: ${REDIS_URL}
    keyspaceJobs:
      - {id: t-gone, delete: {match: "t:*"}, after: 2}
  maintenanceWindows:
    - {start: "0 2 29 2 *", duration: 1m}
`))
	p := plan(t, st)
	res := reconcile.Apply(context.Background(), st, p, reconcile.Options{})
	if res.Failed() {
		t.Errorf("deferred changes reported as a failure: %+v", res.Stacks[0].Changes)
	}
	var job *reconcile.ChangeResult
	for i, ch := range res.Stacks[0].Changes {
		if ch.Kind == reconcile.ResourceKeyspaceJob {
			job = &res.Stacks[0].Changes[i]
		}
	}
	if job == nil || job.Status != reconcile.StatusDeferred {
		t.Fatalf("job: %+v\n%s", job, planText(p))
	}
	if n := countKeys(t, c, "t:*"); n != 10 {
		t.Errorf("deferred job deleted keys: %d left", n)
	}
}
