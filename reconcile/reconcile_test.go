package reconcile_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
)

func TestPlanApplyPlan(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{ConfigFile: true})
	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
	stacks := load(t, f, clitest.StackYAML("shop", `  postgres:
    url: ${PG_URL}
    migrations: {dir: ./migrations}
  redis:
    url: ${REDIS_URL}
    config:
      maxmemory: 256MB
      maxmemory-policy: allkeys-lru
      appendonly: yes
      appendfsync: everysec
      save: "3600 1 300 100 60 10000"
`))

	p := plan(t, stacks)
	sp := p.Stacks[0]
	if len(sp.Errors) > 0 {
		t.Fatalf("plan errors: %v", sp.Errors)
	}
	var resources []string
	for _, c := range sp.Changes {
		resources = append(resources, c.Resource+" "+string(c.Action)+" "+c.Before+" -> "+c.After)
	}
	want := []string{
		"postgres.migration.1 up pending -> applied",
		"postgres.migration.2 up pending -> applied",
		"postgres.migration.3 up pending -> applied",
		"redis.config.appendonly update no -> yes",
		"redis.config.maxmemory update 0 -> 256MB",
		"redis.config.maxmemory-policy update noeviction -> allkeys-lru",
		"redis.config.save update  -> 3600 1 300 100 60 10000",
	}
	if !slices.Equal(resources, want) {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(resources, "\n"), strings.Join(want, "\n"))
	}
	if sp.Postgres.VersionBefore != 0 || sp.Postgres.VersionAfter != 3 {
		t.Errorf("versions %d -> %d, want 0 -> 3", sp.Postgres.VersionBefore, sp.Postgres.VersionAfter)
	}
	if !sp.Redis.Persisted {
		t.Errorf("redis with a config file planned as not persisted")
	}
	// plan wrote nothing: no goose table, no Redis change.
	var exists bool
	if err := testsrv.OpenDB(t, pgURL).QueryRow("SELECT to_regclass('goose_db_version') IS NOT NULL").Scan(&exists); err != nil || exists {
		t.Fatalf("plan created goose's version table (exists=%v, err=%v)", exists, err)
	}
	c := r.Client(t)
	if got := testsrv.ConfigGet(t, c, "maxmemory"); got != "0" {
		t.Fatalf("plan changed maxmemory to %s", got)
	}

	res := mustApply(t, stacks, p)
	if v := clitest.DBVersion(t, pgURL); v != 3 {
		t.Errorf("version after apply = %d, want 3", v)
	}
	if got := testsrv.ConfigGet(t, c, "maxmemory"); got != "268435456" {
		t.Errorf("maxmemory = %s, want 268435456", got)
	}
	if got := testsrv.ConfigGet(t, c, "appendonly"); got != "yes" {
		t.Errorf("appendonly = %s, want yes", got)
	}
	if n := len(res.Stacks[0].Changes); n != 7 {
		t.Errorf("apply reported %d changes, want 7", n)
	}

	again := plan(t, stacks)
	if again.HasChanges() || again.HasErrors() {
		t.Fatalf("plan after apply is not empty:\n%s", planText(again))
	}
	if !strings.Contains(planText(again), "No changes") {
		t.Errorf("text plan lacks 'No changes':\n%s", planText(again))
	}

	// Re-applying is a no-op: goose's table gains no row, Redis keeps its values.
	var rows int
	db := testsrv.OpenDB(t, pgURL)
	db.QueryRow("SELECT count(*) FROM goose_db_version").Scan(&rows)
	if res := mustApply(t, stacks, again); len(res.Stacks[0].Changes) != 0 {
		t.Errorf("re-apply made changes: %+v", res.Stacks[0].Changes)
	}
	var rows2 int
	db.QueryRow("SELECT count(*) FROM goose_db_version").Scan(&rows2)
	if rows != rows2 {
		t.Errorf("re-apply wrote to goose's table: %d rows, then %d", rows, rows2)
	}

	// Persisted with CONFIG REWRITE: a restart keeps the settings.
	if err := r.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	if after := plan(t, stacks); after.HasChanges() {
		t.Errorf("settings lost on restart despite CONFIG REWRITE:\n%s", planText(after))
	}
}

func TestFailingMigrationStopsAtLastGoodVersion(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	f := clitest.NewFixture(t, map[string]string{
		"00001_users.sql":  clitest.ThreeMigrations["00001_users.sql"],
		"00002_orders.sql": clitest.ThreeMigrations["00002_orders.sql"],
		"00003_broken.sql": clitest.Mig("CREATE TABLE half (id int);\nALTER TABLE no_such_table ADD COLUMN x int;", "DROP TABLE half;"),
		"00004_later.sql":  clitest.Mig("CREATE TABLE later (id int);", "DROP TABLE later;"),
	})
	f.Env["PG_URL"] = pgURL
	stacks := load(t, f, clitest.StackYAML("broken", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: migrations}\n"))
	p := plan(t, stacks)
	res := reconcile.Apply(context.Background(), stacks, p, reconcile.Options{})
	if !res.Failed() {
		t.Fatal("apply of a broken migration did not fail")
	}
	if v := clitest.DBVersion(t, pgURL); v != 2 {
		t.Errorf("version after failure = %d, want 2 (the last good one)", v)
	}
	status := map[string]string{}
	var failure string
	for _, c := range res.Stacks[0].Changes {
		status[c.Name] = string(c.Status)
		if c.Status == reconcile.StatusFailed {
			failure = c.Error
		}
	}
	wantStatus := map[string]string{"00001_users.sql": "done", "00002_orders.sql": "done", "00003_broken.sql": "failed", "00004_later.sql": "skipped"}
	for k, v := range wantStatus {
		if status[k] != v {
			t.Errorf("%s: status %q, want %q", k, status[k], v)
		}
	}
	for _, w := range []string{"00003_broken.sql", `relation "no_such_table" does not exist`, "127.0.0.1"} {
		if !strings.Contains(failure, w) {
			t.Errorf("failure message lacks %q: %s", w, failure)
		}
	}
	// The failed migration's transaction was rolled back: no half table.
	var half bool
	testsrv.OpenDB(t, pgURL).QueryRow("SELECT to_regclass('half') IS NOT NULL").Scan(&half)
	if half {
		t.Error("the failed migration left table half behind")
	}
}

func TestTargetBelowLiveVersion(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	f.Env["PG_URL"] = pgURL
	latest := load(t, f, clitest.StackYAML("s", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: migrations}\n"))
	mustApply(t, latest, plan(t, latest))

	refused := load(t, f, clitest.StackYAML("s", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: migrations, target: 1}\n"))
	p := plan(t, refused)
	if errs := p.Stacks[0].Errors; len(errs) != 1 || !strings.Contains(errs[0].Error(), "target 1 is below the live version 3") || !strings.Contains(errs[0].Error(), "allowDown") {
		t.Fatalf("plan errors = %v, want a refusal naming allowDown", errs)
	}
	if errs := p.Stacks[0].Errors; !errors.Is(errs[0], reconcile.ErrPermanent) || reconcile.ClassOf(errs[0]) != reconcile.ClassPermanent {
		t.Errorf("target below the live version: class %v, want permanent", reconcile.ClassOf(errs[0]))
	}
	if res := reconcile.Apply(context.Background(), refused, p, reconcile.Options{}); !res.Failed() {
		t.Error("apply of a refused plan did not fail")
	}
	if v := clitest.DBVersion(t, pgURL); v != 3 {
		t.Fatalf("refused plan changed the version to %d", v)
	}

	down := load(t, f, clitest.StackYAML("s", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: migrations, target: 1, allowDown: true}\n"))
	p = plan(t, down)
	var steps []string
	for _, c := range p.Stacks[0].Changes {
		steps = append(steps, string(c.Action)+" "+c.Name)
	}
	if want := []string{"down 00003_index.sql", "down 00002_orders.sql"}; !slices.Equal(steps, want) {
		t.Errorf("down plan = %v, want %v", steps, want)
	}
	// Down migrations are risky: refused without --allow-risky (the stack has
	// no maintenance window), applied with it.
	res := reconcile.Apply(context.Background(), down, p, reconcile.Options{})
	if !res.Failed() || res.Stacks[0].Changes[0].Status != reconcile.StatusRefused {
		t.Fatalf("down migrations applied without --allow-risky: %+v", res.Stacks[0].Changes)
	}
	if v := clitest.DBVersion(t, pgURL); v != 3 {
		t.Fatalf("refused down migrations changed the version to %d", v)
	}
	if res := reconcile.Apply(context.Background(), down, p, reconcile.Options{AllowRisky: true}); res.Failed() {
		t.Fatalf("apply --allow-risky: %+v", res.Stacks[0])
	}
	if v := clitest.DBVersion(t, pgURL); v != 1 {
		t.Errorf("version after down = %d, want 1", v)
	}
}

func TestAppliedMigrationMissingFromDir(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	f.Env["PG_URL"] = pgURL
	stacks := load(t, f, clitest.StackYAML("s", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: migrations}\n"))
	mustApply(t, stacks, plan(t, stacks))

	g := clitest.NewFixture(t, map[string]string{"00001_users.sql": clitest.ThreeMigrations["00001_users.sql"]})
	g.Env["PG_URL"] = pgURL
	p := plan(t, load(t, g, clitest.StackYAML("s", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: migrations}\n")))
	if errs := p.Stacks[0].Errors; len(errs) != 1 || !strings.Contains(errs[0].Error(), "version 2, 3 applied in the database but not in migrations") {
		t.Errorf("errors = %v, want versions 2 and 3 named as missing", errs)
	}
}

func TestUnreachableServers(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	// A server that accepts connections and never answers: only the
	// connect timeout ends the attempt.
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	go func() {
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()

	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	f.Env["GOOD"] = pgURL
	f.Env["HUNG"] = "postgres://app:topSecret99@" + hung.Addr().String() + "/x"
	f.Env["CLOSED"] = "redis://:topSecret99@" + closedAddr + "/0"
	stacks := load(t, f, clitest.StackYAML("good", "  postgres:\n    url: ${GOOD}\n    migrations: {dir: migrations}\n")+"---\n"+
		clitest.StackYAML("hung", "  postgres:\n    url: ${HUNG}\n    migrations: {dir: migrations}\n")+"---\n"+
		clitest.StackYAML("closed", "  redis:\n    url: ${CLOSED}\n    config: {maxmemory: 1mb}\n"))
	p := reconcile.PlanStacks(context.Background(), stacks, reconcile.Options{ConnectTimeout: 300e6})
	byName := map[string]reconcile.StackPlan{}
	for _, sp := range p.Stacks {
		byName[sp.Stack] = sp
	}
	if g := byName["good"]; len(g.Errors) > 0 || len(g.Changes) != 3 {
		t.Errorf("the healthy stack was not planned: %+v", g)
	}
	for name, host := range map[string]string{"hung": hung.Addr().String(), "closed": closedAddr} {
		errs := byName[name].Errors
		if len(errs) == 0 || !strings.Contains(errs[0].Error(), host) {
			t.Errorf("stack %s: errors %v do not name host %s", name, errs, host)
		}
		if len(errs) > 0 && !errors.Is(errs[0], reconcile.ErrTransient) {
			t.Errorf("stack %s: %q is %v, want transient (retried with backoff)", name, errs[0], reconcile.ClassOf(errs[0]))
		}
		if strings.Contains(errs.Join(" "), "topSecret99") {
			t.Errorf("stack %s: error shows the password: %v", name, errs)
		}
	}
	if !p.HasErrors() {
		t.Error("plan with unreachable servers reports no error")
	}
}

func TestRedisWithoutConfigFile(t *testing.T) {
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	f := clitest.NewFixture(t, nil)
	f.Env["REDIS_URL"] = r.URL()
	stacks := load(t, f, clitest.StackYAML("cache", "  redis:\n    url: ${REDIS_URL}\n    config:\n      maxmemory: 64mb\n"))
	p := plan(t, stacks)
	sp := p.Stacks[0]
	if sp.Redis.Persisted || len(sp.Warnings) != 1 || !strings.Contains(sp.Warnings[0], "lost when it restarts") {
		t.Fatalf("plan does not warn that settings die with a restart: persisted=%v warnings=%v", sp.Redis.Persisted, sp.Warnings)
	}
	mustApply(t, stacks, p)
	if again := plan(t, stacks); again.HasChanges() {
		t.Fatalf("not in sync after apply:\n%s", planText(again))
	}
	if err := r.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	if after := plan(t, stacks); !after.HasChanges() {
		t.Error("after a restart without a config file the setting should have drifted back")
	}
}

func TestRedisUnknownParameter(t *testing.T) {
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	f := clitest.NewFixture(t, nil)
	f.Env["REDIS_URL"] = r.URL()
	stacks := load(t, f, clitest.StackYAML("cache", "  redis:\n    url: ${REDIS_URL}\n    config:\n      maxmemory: 64mb\n      no-such-param: \"1\"\n"))
	p := plan(t, stacks)
	if errs := p.Stacks[0].Errors; len(errs) != 1 || !strings.Contains(errs[0].Error(), "does not know parameter no-such-param") {
		t.Fatalf("errors = %v, want the unknown parameter reported", errs)
	}
	reconcile.Apply(context.Background(), stacks, p, reconcile.Options{})
	if got := testsrv.ConfigGet(t, r.Client(t), "maxmemory"); got != "0" {
		t.Errorf("a stack with a plan error was applied: maxmemory=%s", got)
	}
}

func TestRedisBatchIsAllOrNothing(t *testing.T) {
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	f := clitest.NewFixture(t, nil)
	f.Env["REDIS_URL"] = r.URL()
	// active-defrag-cycle-min must be 1..99: Redis checks it at CONFIG SET
	// time (dbops does not know this rule offline).
	stacks := load(t, f, clitest.StackYAML("cache", "  redis:\n    url: ${REDIS_URL}\n    config:\n      maxmemory: 64mb\n      active-defrag-cycle-min: \"100\"\n"))
	res := reconcile.Apply(context.Background(), stacks, plan(t, stacks), reconcile.Options{})
	if !res.Failed() {
		t.Fatal("CONFIG SET with an out-of-range value did not fail")
	}
	if got := testsrv.ConfigGet(t, r.Client(t), "maxmemory"); got != "0" {
		t.Errorf("half the batch was applied: maxmemory=%s", got)
	}
}
