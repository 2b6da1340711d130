package main_test

import (
	"context"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile/lock"
)

// apply on a stack whose lock another dbops holds (a `dbops run` applying)
// warns, naming the holder, and applies only once the lock is released:
// never interleaved.
func TestApplyWaitsForTheStackLock(t *testing.T) {
	cases := []struct {
		name  string
		stack func(pg, redis string) string
		take  func(t *testing.T, pgURL string, r *testsrv.Redis) (lock.Lock, string)
	}{
		{"postgres advisory lock",
			func(pg, _ string) string {
				return clitest.StackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: ./migrations}\n")
			},
			func(t *testing.T, pgURL string, _ *testsrv.Redis) (lock.Lock, string) {
				l, err := lock.Postgres(context.Background(), pgURL, "shop", 0)
				if err != nil {
					t.Fatal(err)
				}
				return l, "(dbops-lock:shop) from"
			}},
		{"redis lock key",
			func(_, redis string) string {
				return clitest.StackYAML("shop", "  redis:\n    url: ${REDIS_URL}\n    config: {maxmemory: 64mb}\n")
			},
			func(t *testing.T, _ string, r *testsrv.Redis) (lock.Lock, string) {
				l, err := lock.Redis(context.Background(), r.Client(t), "shop", "loop-host-42", 0)
				if err != nil {
					t.Fatal(err)
				}
				return l, "lock held by loop-host-42"
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pgURL := testsrv.PostgresDB(t)
			r := testsrv.NewRedis(t, testsrv.RedisOptions{})
			f := clitest.NewFixture(t, clitest.ThreeMigrations)
			f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
			f.Write(t, "stack.yaml", tc.stack(pgURL, r.URL()))
			l, holder := tc.take(t, pgURL, r)
			p := startDbops(t, f, false, "apply", "--auto-approve", "stack.yaml")
			p.waitFor(t, "Waiting for it to finish")
			out := p.output()
			if !strings.Contains(out, "warning: stack shop is being applied by another dbops") || !strings.Contains(out, holder) {
				t.Errorf("warning does not name the holder %q:\n%s", holder, out)
			}
			if strings.Contains(out, "started") || strings.Contains(out, "stack shop (") {
				t.Fatalf("planned or applied while the lock was held:\n%s", out)
			}
			if err := l.Release(context.Background()); err != nil {
				t.Fatal(err)
			}
			if code := p.wait(t); code != 0 || !strings.Contains(p.output(), "the other dbops is done") {
				t.Fatalf("exit %d after the lock was released:\n%s", code, p.output())
			}
		})
	}
}

// apply warns when a `dbops run` reconciles the stack between its cycles:
// no lock is held then, but the loop's pooled plan sessions sit idle.
func TestApplyWarnsOfAnIdleLoop(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	f.Env["PG_URL"] = pgURL
	f.Write(t, "stack.yaml", clitest.StackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: ./migrations}\n"))
	const warning = "warning: stack shop looks reconciled by a `dbops run` ("
	// --loop-idle 1ms: any idle dbops session counts, so the test need not wait 30s.
	apply := []string{"apply", "--auto-approve", "--loop-idle", "1ms", "stack.yaml"}

	if res := f.Run(t, apply...); res.Code != 0 || strings.Contains(res.Stderr, warning) {
		t.Fatalf("without a loop: exit %d, stderr:\n%s", res.Code, res.Stderr)
	}
	db := clitest.Monitor(t, pgURL)
	p := startRun(t, f, freeAddrs(t, 1)[0], "--interval", "1h")
	eventually(t, "the loop's pooled session idle after its first cycle", func() bool {
		if p.exited() {
			t.Fatalf("dbops run exited:\n%s", p.output())
		}
		var n int
		clitest.QueryRow(t, db, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND application_name = 'dbops' AND state = 'idle'`, nil, &n)
		return n > 0
	})
	res := f.Run(t, apply...)
	if res.Code != 0 || !strings.Contains(res.Stderr, warning) || !strings.Contains(res.Stderr, "idle dbops session(s) from ") {
		t.Errorf("with a loop: exit %d, stderr:\n%s", res.Code, res.Stderr)
	}
}

// apply never applies a stack whose lock session failed (here the lock
// function itself errs; in a fleet, "too many clients") while its plan
// succeeded: without the lock it could interleave with a `dbops run`.
func TestApplyRefusesWithoutTheStackLock(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	f.Env["PG_URL"] = pgURL
	f.Write(t, "stack.yaml", clitest.StackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: ./migrations}\n"))
	db := clitest.Monitor(t, pgURL)
	ctx := context.Background()
	// A pg_try_advisory_lock(int, int) found before pg_catalog's: only the
	// stack lock calls the two-key form.
	for _, q := range []string{
		"CREATE SCHEMA shadow",
		`CREATE FUNCTION shadow.pg_try_advisory_lock(integer, integer) RETURNS boolean
			LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'lock refused by the test'; END $$`,
		"DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = shadow, pg_catalog, public', current_database()); END $$",
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	res := f.Run(t, "apply", "--auto-approve", "stack.yaml")
	out := res.Stdout + res.Stderr
	if res.Code != 1 || !strings.Contains(out, "not applied: the stack lock could not be taken") || !strings.Contains(out, "lock refused by the test") {
		t.Errorf("exit %d, want 1 and the lock's error:\n%s", res.Code, out)
	}
	var n int
	clitest.QueryRow(t, db, "SELECT count(*) FROM pg_class WHERE relname = 'goose_db_version'", nil, &n)
	if n != 0 {
		t.Errorf("migrations ran without the stack lock:\n%s", out)
	}
}
