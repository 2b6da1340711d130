package reconcile_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/inspect"
	"github.com/amanat/dbops/reconcile/redis"
	"github.com/amanat/dbops/spec"
)

// fill writes n keys prefix0..prefix(n-1) in one pipeline.
func fill(t *testing.T, c *goredis.Client, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	p := c.Pipeline()
	for i := range n {
		p.Set(ctx, fmt.Sprintf("%s%d", prefix, i), "v", 0)
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

func countKeys(t *testing.T, c *goredis.Client, pattern string) int {
	t.Helper()
	n, err := redis.CountMatching(context.Background(), c, pattern, redis.Bound{Time: 1 << 40})
	if err != nil || !n.Complete {
		t.Fatalf("count %s: %v (complete %v)", pattern, err, n.Complete)
	}
	return int(n.Keys)
}

func jobChange(t *testing.T, sp reconcile.StackPlan, id string) *reconcile.Change {
	t.Helper()
	for i, c := range sp.Changes {
		if c.Kind == reconcile.ResourceKeyspaceJob && c.Name == id {
			return &sp.Changes[i]
		}
	}
	return nil
}

// jobResult is the keyspace job's result in the first stack of res.
func jobResult(res *reconcile.Result) *reconcile.ChangeResult {
	for i, ch := range res.Stacks[0].Changes {
		if ch.Kind == reconcile.ResourceKeyspaceJob {
			return &res.Stacks[0].Changes[i]
		}
	}
	return nil
}

func redisStack(t *testing.T, r *testsrv.Redis, jobs string) []spec.Stack {
	t.Helper()
	f := clitest.NewFixture(t, nil)
	f.Env["REDIS_URL"] = r.URL()
	return load(t, f, clitest.StackYAML("cache", "  redis:\n    url: ${REDIS_URL}\n    keyspaceJobs:\n"+jobs))
}

// TestKeyspaceJob: plan counts the matching keys and changes nothing;
// apply deletes exactly them (not other patterns, not other databases),
// records the job, and reports the count; the next plan is in sync; a
// stale plan applied again does not run it twice.
func TestKeyspaceJob(t *testing.T) {
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := r.Client(t)
	fill(t, c, "payment:idem:", 50)
	fill(t, c, "session:", 100)
	other := goredis.NewClient(&goredis.Options{Addr: c.Options().Addr, Password: c.Options().Password, DB: 1})
	defer other.Close()
	fill(t, other, "payment:idem:", 7)
	stacks := redisStack(t, r, `      - id: 2026-12-payment-idem-v2
        delete: {match: "payment:idem:*"}
`)
	p := plan(t, stacks)
	sp := p.Stacks[0]
	ch := jobChange(t, sp, "2026-12-payment-idem-v2")
	if len(sp.Errors) > 0 || ch == nil {
		t.Fatalf("plan: errors %v, no job change:\n%s", sp.Errors, planText(p))
	}
	if ch.Before != "50 keys match payment:idem:* in db 0" || ch.Risk != "" || ch.Action != reconcile.ActionDelete {
		t.Errorf("change: %+v", *ch)
	}
	if js := sp.Redis.KeyspaceJobs; len(js) != 1 || js[0].State != reconcile.JobPending || js[0].Keys != 50 || js[0].AtLeast {
		t.Errorf("job status: %+v", js)
	}
	if n := countKeys(t, c, "payment:idem:*"); n != 50 {
		t.Fatalf("plan deleted keys: %d left", n)
	}
	res := mustApply(t, stacks, p)
	got := res.Stacks[0].Changes
	if len(got) != 1 || got[0].Keys == nil || *got[0].Keys != 50 {
		t.Fatalf("apply result: %+v", got)
	}
	if n := countKeys(t, c, "payment:idem:*"); n != 0 {
		t.Errorf("%d matching keys left", n)
	}
	if n := countKeys(t, c, "session:*"); n != 100 {
		t.Errorf("session keys: %d, want 100 untouched", n)
	}
	if n := countKeys(t, other, "*"); n != 7 {
		t.Errorf("db 1: %d keys, want 7 untouched", n)
	}
	recs, err := redis.Recorded(context.Background(), c, []string{"2026-12-payment-idem-v2"})
	if rec, ok := recs["2026-12-payment-idem-v2"]; err != nil || !ok || rec.Deleted != 50 || rec.At.IsZero() {
		t.Errorf("record: %+v %v", recs, err)
	}

	again := plan(t, stacks)
	if again.HasChanges() || again.HasErrors() {
		t.Fatalf("plan after apply not in sync:\n%s", planText(again))
	}
	if js := again.Stacks[0].Redis.KeyspaceJobs; len(js) != 1 || js[0].State != reconcile.JobDone || js[0].Deleted != 50 {
		t.Errorf("job after apply: %+v", js)
	}
	if !strings.Contains(planText(again), "keyspace job 2026-12-payment-idem-v2: in sync") {
		t.Errorf("text plan:\n%s", planText(again))
	}

	// new keys of the old shape, and the stale plan applied again: it must not run twice
	fill(t, c, "payment:idem:", 5)
	stale := reconcile.Apply(context.Background(), stacks, p, reconcile.Options{})
	if ch := stale.Stacks[0].Changes; len(ch) != 1 || ch[0].Status != reconcile.StatusSkipped || !strings.Contains(ch[0].Error, "already run") {
		t.Errorf("stale apply: %+v", ch)
	}
	if n := countKeys(t, c, "payment:idem:*"); n != 5 {
		t.Errorf("the job ran twice: %d of 5 new keys left", n)
	}
}

// TestKeyspaceJobReplicas: two processes applying the same plan at once
// run the job once: one deletes and records, the other is skipped.
func TestKeyspaceJobReplicas(t *testing.T) {
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := r.Client(t)
	fill(t, c, "k:", 20000)
	fill(t, c, "other:", 20000)
	stacks := redisStack(t, r, "      - id: j\n        delete: {match: \"k:*\"}\n")
	p := plan(t, stacks)
	var wg sync.WaitGroup
	results := make([]*reconcile.Result, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// each replica its own stacks and connections, as two processes
			results[i] = reconcile.Apply(context.Background(), redisStack(t, r, "      - id: j\n        delete: {match: \"k:*\"}\n"), p, reconcile.Options{})
		}()
	}
	wg.Wait()
	done, skipped := 0, 0
	var deleted int64
	for _, res := range results {
		for _, ch := range res.Stacks[0].Changes {
			switch ch.Status {
			case reconcile.StatusDone:
				done++
				deleted += *ch.Keys
			case reconcile.StatusSkipped:
				skipped++
			default:
				t.Errorf("unexpected outcome %s: %s", ch.Status, ch.Error)
			}
		}
	}
	if done != 1 || skipped != 1 || deleted != 20000 {
		t.Errorf("done %d, skipped %d, deleted %d; want 1, 1, 20000", done, skipped, deleted)
	}
	if n, _ := c.HLen(context.Background(), redis.JobsKey).Result(); n != 1 {
		t.Errorf("%d records", n)
	}
}

// TestKeyspaceJobBound: a count stopped by the bound says "≥ N" and the
// share of the keyspace is then sampled; the bound is in SCAN calls, so
// the test does not depend on the machine's speed.
func TestKeyspaceJobBound(t *testing.T) {
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := r.Client(t)
	fill(t, c, "a:", 1600)
	fill(t, c, "b:", 400)
	tests := []struct {
		name      string
		jobs      string
		bound     redis.Bound
		atLeast   bool
		wantRisky string // "" not risky
	}{
		{"exact", "      - id: j\n        delete: {match: \"b:*\"}\n", redis.Bound{}, false, ""},
		{"exact share over the limit", "      - id: j\n        delete: {match: \"a:*\"}\n", redis.Bound{}, false, "matches more than riskyShare 50% of the keys of db 0"},
		{"exact share under its riskyShare", "      - id: j\n        delete: {match: \"a:*\", riskyShare: 0.9}\n", redis.Bound{}, false, ""},
		{"bounded", "      - id: j\n        delete: {match: \"b:*\"}\n", redis.Bound{Calls: 1, Count: 10}, true, ""},
		{"bounded, sampled share over the limit", "      - id: j\n        delete: {match: \"a:*\"}\n", redis.Bound{Calls: 1, Count: 10}, true, "matches more than riskyShare 50% of the keys of db 0 (sampled)"},
		{"everything", "      - id: j\n        delete: {match: \"*\"}\n", redis.Bound{}, false, `match "*" deletes every key of db 0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := reconcile.PlanStacks(context.Background(), redisStack(t, r, tt.jobs), reconcile.Options{KeyspaceScan: tt.bound})
			sp := p.Stacks[0]
			ch := jobChange(t, sp, "j")
			if ch == nil {
				t.Fatalf("no change: %v\n%s", sp.Errors, planText(p))
			}
			js := sp.Redis.KeyspaceJobs[0]
			if js.AtLeast != tt.atLeast || strings.HasPrefix(ch.Before, "≥ ") != tt.atLeast {
				t.Errorf("atLeast %v, before %q", js.AtLeast, ch.Before)
			}
			if tt.atLeast && (js.Keys >= 400 || js.Keys < 0) {
				t.Errorf("bounded count %d: want below the total", js.Keys)
			}
			if !tt.atLeast && tt.name == "exact" && js.Keys != 400 {
				t.Errorf("count %d, want 400", js.Keys)
			}
			if (tt.wantRisky == "") != (ch.Risk == "") || !strings.Contains(ch.Risk, tt.wantRisky) {
				t.Errorf("risk %q, want %q", ch.Risk, tt.wantRisky)
			}
			if tt.name == "exact share over the limit" && !strings.HasSuffix(ch.Before, "in db 0 (80% of 2000)") {
				t.Errorf("before %q: want the share measured", ch.Before)
			}
		})
	}
}

// TestKeyspaceJobRiskyStar: "*" is refused without --allow-risky; with it
// every key goes except dbops' own (the record of the job survives).
func TestKeyspaceJobRiskyStar(t *testing.T) {
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := r.Client(t)
	fill(t, c, "x:", 30)
	if err := c.Set(context.Background(), "dbops:lock:other-stack", "h", 0).Err(); err != nil {
		t.Fatal(err)
	}
	stacks := redisStack(t, r, "      - id: all\n        delete: {match: \"*\"}\n")
	p := plan(t, stacks)
	res := reconcile.Apply(context.Background(), stacks, p, reconcile.Options{})
	if ch := res.Stacks[0].Changes; len(ch) != 1 || ch[0].Status != reconcile.StatusRefused {
		t.Fatalf("risky job without --allow-risky: %+v", ch)
	}
	if n := countKeys(t, c, "x:*"); n != 30 {
		t.Fatalf("refused job deleted keys: %d left", n)
	}
	res = reconcile.Apply(context.Background(), stacks, p, reconcile.Options{AllowRisky: true})
	if ch := res.Stacks[0].Changes; len(ch) != 1 || ch[0].Status != reconcile.StatusDone || *ch[0].Keys != 30 {
		t.Fatalf("with --allow-risky: %+v", ch)
	}
	keys, _ := c.Keys(context.Background(), "*").Result() // test only: the server is ours and tiny
	if strings.Join(keys, ",") != "dbops:lock:other-stack,dbops:keyspace-jobs" && strings.Join(keys, ",") != "dbops:keyspace-jobs,dbops:lock:other-stack" {
		t.Errorf("keys left: %v, want only dbops' own", keys)
	}
}

// TestKeyspaceJobAfter: a job waits for its migration: not planned while
// the target stops before it, run after it in the same apply, and not run
// when that migration fails.
func TestKeyspaceJobAfter(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := r.Client(t)
	fill(t, c, "cache:v1:", 10)
	fill(t, c, "keep:", 30)
	f := clitest.NewFixture(t, map[string]string{
		"00001_a.sql":          clitest.Mig("CREATE TABLE a (id int);", "DROP TABLE a;"),
		"00002_shape_v2.sql":   clitest.Mig("ALTER TABLE a ADD COLUMN b int;", "ALTER TABLE a DROP COLUMN b;"),
		"00003_broken_sql.sql": clitest.Mig("SELECT 1/0;", "SELECT 1;"),
	})
	f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
	stack := func(target, after string) []spec.Stack {
		return load(t, f, clitest.StackYAML("s", `  postgres:
    url: ${PG_URL}
    migrations: {dir: ./migrations, target: `+target+`}
  redis:
    url: ${REDIS_URL}
    keyspaceJobs:
      - id: cache-v2
        delete: {match: "cache:v1:*"}
        after: `+after+`
`))
	}
	// target 1: migration 2 is neither applied nor planned
	st := stack("1", "00002_shape_v2")
	p := plan(t, st)
	if jobChange(t, p.Stacks[0], "cache-v2") != nil || p.Stacks[0].Redis.KeyspaceJobs[0].State != reconcile.JobWaiting {
		t.Fatalf("job before its migration is planned:\n%s", planText(p))
	}
	if !strings.Contains(planText(p), "keyspace job cache-v2: waits for migration 00002_shape_v2.sql") {
		t.Errorf("text plan:\n%s", planText(p))
	}
	mustApply(t, st, p)
	if n := countKeys(t, c, "cache:v1:*"); n != 10 {
		t.Fatalf("waiting job ran: %d keys left", n)
	}
	// target 3, job after the broken migration 3: migration 2 runs, 3 fails, the job waits
	st = stack("3", "3")
	p = plan(t, st)
	ch := jobChange(t, p.Stacks[0], "cache-v2")
	if ch == nil || !strings.Contains(ch.After, "after migration 00003_broken_sql.sql") {
		t.Fatalf("job after a planned migration:\n%s", planText(p))
	}
	res := reconcile.Apply(context.Background(), st, p, reconcile.Options{})
	jobRes := jobResult(res)
	if jobRes == nil || jobRes.Status != reconcile.StatusSkipped || !strings.Contains(jobRes.Error, "waits for migration 00003_broken_sql.sql") {
		t.Fatalf("job after a failed migration: %+v", jobRes)
	}
	if n := countKeys(t, c, "cache:v1:*"); n != 10 {
		t.Fatalf("job ran though its migration failed: %d keys left", n)
	}
	// target 2, job after 2 (applied): runs
	st = stack("2", "00002_shape_v2.sql")
	p = plan(t, st)
	mustApply(t, st, p)
	if n := countKeys(t, c, "cache:v1:*"); n != 0 {
		t.Fatalf("job after an applied migration left %d keys", n)
	}
}

// usersJobAfter2 is a stack's redis part: a job deleting users:* after
// migration 2 (of clitest.ThreeMigrations).
const usersJobAfter2 = `  redis:
    url: ${REDIS_URL}
    keyspaceJobs:
      - id: users-v2
        delete: {match: "users:*"}
        after: 2
`

// jobAfterFixture is a fresh database, a Redis holding 10 users:* and 30
// keep:* keys (the job's share under riskyShare), and clitest's three
// migrations with PG_URL and REDIS_URL pointing at both.
func jobAfterFixture(t *testing.T) (*clitest.Fixture, *goredis.Client, string) {
	t.Helper()
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := r.Client(t)
	fill(t, c, "users:", 10)
	fill(t, c, "keep:", 30)
	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
	return f, c, pgURL
}

// TestKeyspaceJobSameApply: the migration and the job in one apply, the
// job after it.
func TestKeyspaceJobSameApply(t *testing.T) {
	f, c, _ := jobAfterFixture(t)
	st := load(t, f, clitest.StackYAML("s", clitest.PGMigrations+usersJobAfter2))
	p := plan(t, st)
	res := mustApply(t, st, p)
	var order []string
	for _, ch := range res.Stacks[0].Changes {
		order = append(order, string(ch.Kind)+":"+ch.Name)
	}
	if got := strings.Join(order, " "); got != "postgres.migration:00001_users.sql postgres.migration:00002_orders.sql postgres.migration:00003_index.sql redis.keyspace:users-v2" {
		t.Errorf("apply order: %s", got)
	}
	if n := countKeys(t, c, "users:*"); n != 0 {
		t.Errorf("%d keys left", n)
	}
}

// TestKeyspaceJobLeastPrivilege: plan works with the read-only ACL the
// README gives for keyspace jobs, apply with its apply ACL, and inspect's
// Redis part with +info +slowlog|get.
func TestKeyspaceJobLeastPrivilege(t *testing.T) {
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := r.Client(t)
	fill(t, c, "payment:idem:", 20)
	fill(t, c, "keep:", 40)
	ctx := context.Background()
	base := "resetkeys resetchannels -@all +ping +info +config|get"
	for _, acl := range []string{
		"ACL SETUSER planner on >planPw-1 " + base + " +scan +dbsize +hmget %R~dbops:keyspace-jobs +slowlog|get",
		"ACL SETUSER applier on >applyPw-2 " + base + " +scan +dbsize +hmget +unlink +hsetnx +set +get +del +evalsha +eval ~payment:* ~dbops:*",
	} {
		var args []any
		for _, a := range strings.Fields(acl) {
			args = append(args, a)
		}
		if err := c.Do(ctx, args...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	as := func(user, pw string) []spec.Stack {
		f := clitest.NewFixture(t, nil)
		f.Env["REDIS_URL"] = fmt.Sprintf("redis://%s:%s@%s:%d", user, pw, r.Host, r.Port)
		return load(t, f, clitest.StackYAML("cache", "  redis:\n    url: ${REDIS_URL}\n    keyspaceJobs:\n      - {id: idem, delete: {match: \"payment:idem:*\"}}\n"))
	}
	p := plan(t, as("planner", "planPw-1"))
	if p.HasErrors() || jobChange(t, p.Stacks[0], "idem") == nil {
		t.Fatalf("plan with the read-only ACL:\n%s", planText(p))
	}
	mustApply(t, as("applier", "applyPw-2"), plan(t, as("applier", "applyPw-2")))
	if n := countKeys(t, c, "payment:idem:*"); n != 0 {
		t.Errorf("%d keys left", n)
	}
	if again := plan(t, as("planner", "planPw-1")); again.HasChanges() || again.HasErrors() {
		t.Errorf("plan after apply:\n%s", planText(again))
	}
	rep := inspect.Stack(ctx, &as("planner", "planPw-1")[0], inspect.Options{})
	if rep.Redis.Error != "" || rep.Redis.SlowlogNote != "" || len(rep.Redis.Keyspace) != 1 || rep.Redis.Keyspace[0].Keys != 41 {
		t.Errorf("inspect with the read-only ACL: %+v", rep.Redis)
	}
}

// TestKeyspaceJobAfterUnreadableLevel: when apply cannot read the migration
// level its job waits for, the job fails saying so (and is tried again);
// it neither runs nor claims the migration is not applied.
func TestKeyspaceJobAfterUnreadableLevel(t *testing.T) {
	f, c, pgURL := jobAfterFixture(t)
	st := load(t, f, clitest.StackYAML("s", clitest.PGMigrations))
	mustApply(t, st, plan(t, st))
	st = load(t, f, clitest.StackYAML("s", clitest.PGMigrations+usersJobAfter2))
	p := plan(t, st)
	if jobChange(t, p.Stacks[0], "users-v2") == nil {
		t.Fatalf("job not planned:\n%s", planText(p))
	}
	// goose's table no longer reads as goose's between plan and apply
	db := testsrv.OpenDB(t, pgURL)
	if _, err := db.Exec("ALTER TABLE goose_db_version RENAME COLUMN is_applied TO applied"); err != nil {
		t.Fatal(err)
	}
	res := reconcile.Apply(context.Background(), st, p, reconcile.Options{})
	jobRes := jobResult(res)
	if jobRes == nil || jobRes.Status != reconcile.StatusFailed || !strings.Contains(jobRes.Error, "cannot tell whether migration 00002_orders.sql is applied") {
		t.Fatalf("job whose migration level cannot be read: %+v", jobRes)
	}
	if n := countKeys(t, c, "users:*"); n != 10 {
		t.Errorf("job ran: %d keys left", n)
	}
}
