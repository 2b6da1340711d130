package reconcile_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/render"
	"github.com/amanat/dbops/spec"
)

func riskOf(p *reconcile.Plan, resource string) (reconcile.Change, bool) {
	for _, c := range p.Stacks[0].Changes {
		if c.Resource == resource {
			return c, true
		}
	}
	return reconcile.Change{}, false
}

func TestRiskyChangesAgainstLiveServers(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := r.Client(t)
	c.ConfigSet(context.Background(), "appendonly", "yes")
	f := clitest.NewFixture(t, map[string]string{
		"00001_big.sql": clitest.Mig("CREATE TABLE big (id int, v text);\nINSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 2000) g;", "DROP TABLE big;"),
	})
	f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
	base := clitest.StackYAML("s", clitest.PGMigrations)
	stacks := load(t, f, base)
	mustApply(t, stacks, plan(t, stacks))

	f.Write(t, "migrations/00002_idx.sql", clitest.Mig("CREATE INDEX big_v ON big (v);", "DROP INDEX big_v;"))
	f.Write(t, "migrations/00003_idx_conc.sql", "-- +goose NO TRANSACTION\n"+clitest.Mig("CREATE INDEX CONCURRENTLY big_id ON big (id);", "DROP INDEX CONCURRENTLY big_id;"))
	f.Write(t, "migrations/00004_new_table.sql", clitest.Mig("CREATE TABLE fresh (id int);\nCREATE INDEX fresh_id ON fresh (id);", "DROP TABLE fresh;"))
	f.Write(t, "migrations/00005_drop.sql", clitest.Mig("ALTER TABLE big DROP COLUMN v;", "ALTER TABLE big ADD COLUMN v text;"))
	stacks = load(t, f, base+`  redis:
    url: ${REDIS_URL}
    config:
      appendonly: "no"
      maxmemory: 1k
      hz: "20"
`)
	p := reconcile.PlanStacks(context.Background(), stacks, reconcile.Options{IndexThreshold: 64 << 10})
	want := map[string]string{
		"postgres.migration.2":    "big",    // CREATE INDEX on a table over the threshold
		"postgres.migration.3":    "",       // CONCURRENTLY
		"postgres.migration.4":    "",       // a table created in the same migration
		"postgres.migration.5":    "v",      // DROP COLUMN
		"redis.config.appendonly": "AOF",    // turning AOF off
		"redis.config.maxmemory":  "in use", // below used_memory
		"redis.config.hz":         "",
	}
	for res, substr := range want {
		c, ok := riskOf(p, res)
		if !ok {
			t.Errorf("%s not planned:\n%s", res, planText(p))
			continue
		}
		if (substr == "") != (c.Risk == "") || !strings.Contains(c.Risk, substr) {
			t.Errorf("%s: risk %q, want one mentioning %q", res, c.Risk, substr)
		}
	}
	// With a big threshold the index on big is not risky.
	p2 := reconcile.PlanStacks(context.Background(), stacks, reconcile.Options{IndexThreshold: 1 << 30})
	if c, _ := riskOf(p2, "postgres.migration.2"); c.Risk != "" {
		t.Errorf("index on a small table flagged: %q", c.Risk)
	}

	// No window: risky changes are refused, safe ones go through, and the
	// migrations after a refused one wait for it.
	res := reconcile.Apply(context.Background(), stacks, p, reconcile.Options{})
	status := map[string]string{}
	for _, ch := range res.Stacks[0].Changes {
		status[ch.Resource] = string(ch.Status)
	}
	wantStatus := map[string]string{
		"postgres.migration.2": "refused", "postgres.migration.3": "refused", "postgres.migration.4": "refused",
		"postgres.migration.5": "refused", "redis.config.appendonly": "refused", "redis.config.maxmemory": "refused",
		"redis.config.hz": "done",
	}
	for k, v := range wantStatus {
		if status[k] != v {
			t.Errorf("%s: %s, want %s", k, status[k], v)
		}
	}
	if got := testsrv.ConfigGet(t, c, "appendonly"); got != "yes" {
		t.Errorf("a refused risky setting was applied: appendonly=%s", got)
	}
	if v := clitest.DBVersion(t, pgURL); v != 1 {
		t.Errorf("version %d, want 1", v)
	}
}

func TestMaintenanceWindows(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	// t holds a row: dropping an empty table is not risky.
	f := clitest.NewFixture(t, map[string]string{"00001_t.sql": clitest.Mig("CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);", "DROP TABLE t;")})
	f.Env["PG_URL"] = pgURL
	stacks := load(t, f, clitest.StackYAML("s", clitest.PGMigrations))
	mustApply(t, stacks, plan(t, stacks))
	f.Write(t, "migrations/00002_drop.sql", clitest.Mig("DROP TABLE t;", "CREATE TABLE t (id int);"))
	f.Write(t, "migrations/00003_after.sql", clitest.Mig("CREATE TABLE after_drop (id int);", "DROP TABLE after_drop;"))
	stacks = load(t, f, clitest.StackYAML("s", `  postgres:
    url: ${PG_URL}
    migrations: {dir: ./migrations}
  maintenanceWindows:
    - {start: "0 2 * * SUN", duration: 2h, timezone: Europe/Berlin}
`))
	closed := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)                   // a Wednesday
	open := time.Date(2026, 11, 29, 2, 30, 0, 0, mustZone(t, "Europe/Berlin")) // Sunday 02:30 Berlin
	at := func(now time.Time) reconcile.Options { return reconcile.Options{Now: func() time.Time { return now }} }

	p := reconcile.PlanStacks(context.Background(), stacks, at(closed))
	c, _ := riskOf(p, "postgres.migration.2")
	if c.Risk == "" || !strings.Contains(c.Deferred, "until 2026-11-29T02:00:00+01:00") {
		t.Fatalf("outside the window: risk %q deferred %q", c.Risk, c.Deferred)
	}
	res := reconcile.Apply(context.Background(), stacks, p, at(closed))
	if res.Failed() {
		t.Errorf("deferring is not a failure: %+v", res.Stacks[0])
	}
	for _, ch := range res.Stacks[0].Changes {
		if ch.Status != reconcile.StatusDeferred {
			t.Errorf("%s: %s outside the window, want deferred", ch.Resource, ch.Status)
		}
	}
	if v := clitest.DBVersion(t, pgURL); v != 1 {
		t.Fatalf("risky migration applied outside the window: version %d", v)
	}

	p = reconcile.PlanStacks(context.Background(), stacks, at(open))
	if c, _ := riskOf(p, "postgres.migration.2"); c.Risk == "" || c.Deferred != "" {
		t.Errorf("inside the window: risk %q deferred %q", c.Risk, c.Deferred)
	}
	mustApplyWith(t, stacks, p, at(open))
	if v := clitest.DBVersion(t, pgURL); v != 3 {
		t.Errorf("inside the window: version %d, want 3", v)
	}
}

func mustApplyWith(t *testing.T, stacks []spec.Stack, p *reconcile.Plan, o reconcile.Options) {
	t.Helper()
	if res := reconcile.Apply(context.Background(), stacks, p, o); res.Failed() {
		var b strings.Builder
		render.ResultText(&b, res, render.Style{})
		t.Fatalf("apply failed:\n%s", b.String())
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
