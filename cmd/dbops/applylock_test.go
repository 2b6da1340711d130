package main_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"

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
				return clitest.StackYAML("shop", clitest.PGMigrations)
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
	f.Write(t, "stack.yaml", clitest.StackYAML("shop", clitest.PGMigrations))
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
	f.Write(t, "stack.yaml", clitest.StackYAML("shop", clitest.PGMigrations))
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

// apply on more stacks than a server has connections for: above
// --hold-locks-max stacks per server it no longer holds a lock session per
// stack for its whole run (which ran the server out of connections), but
// locks each stack while applying it, after planning it again under the
// lock. Every stack is applied; the server's limit is never hit.
func TestApplyManyStacksLocksEach(t *testing.T) {
	const stacks, maxConns = 40, 30
	ctx := context.Background()
	pg := testsrv.NewPostgres(t, testsrv.PostgresOptions{MaxConnections: maxConns})
	f := clitest.NewFixture(t, map[string]string{"00001_a.sql": clitest.Mig("CREATE TABLE a (id int);", "DROP TABLE a;")})
	var yaml strings.Builder
	for i := range stacks {
		db := fmt.Sprintf("many_%02d", i)
		if err := pg.CreateDatabase(ctx, db); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&yaml, "---\n%s", clitest.StackYAML(strings.ReplaceAll(db, "_", "-"), "  postgres:\n    url: "+pg.URL(db)+"\n    migrations: {dir: ./migrations}\n"))
	}
	f.Write(t, "stacks.yaml", yaml.String())

	// Holding a lock session per stack needs 40 sessions of 30.
	res := f.Run(t, "apply", "--auto-approve", "--hold-locks-max", "100", "stacks.yaml")
	if res.Code == 0 {
		t.Fatalf("applying %d stacks with a lock session each on a server of %d connections succeeded; the test no longer shows the limit", stacks, maxConns)
	}
	res = f.Run(t, "apply", "--auto-approve", "stacks.yaml")
	out := res.Stdout + res.Stderr
	if res.Code != 0 || !strings.Contains(out, "each stack is locked only while it is applied") {
		t.Fatalf("exit %d:\n%s", res.Code, out)
	}
	for i := range stacks {
		var n int
		db := clitest.Monitor(t, pg.URL(fmt.Sprintf("many_%02d", i)))
		clitest.QueryRow(t, db, "SELECT count(*) FROM goose_db_version WHERE version_id = 1", nil, &n)
		db.Close(ctx) // one at a time: the server has 30 connections
		if n != 1 {
			t.Errorf("stack many_%02d not applied:\n%s", i, out)
		}
	}
}

// Locking each stack only while applying it (--hold-locks-max exceeded,
// here 0), apply plans the stack again under its lock: a stack another
// client migrated between the plan shown and its lock is not applied.
func TestApplyLockEachRefusesMoved(t *testing.T) {
	ctx := context.Background()
	pgURL := testsrv.PostgresDB(t)
	f := clitest.NewFixture(t, map[string]string{
		"00001_a.sql": clitest.Mig("CREATE TABLE a (id int);", "DROP TABLE a;"),
		"00002_b.sql": clitest.Mig("CREATE TABLE b (id int);", "DROP TABLE b;"),
	})
	f.Env["PG_URL"] = pgURL
	f.Write(t, "stack.yaml", clitest.StackYAML("shop", clitest.PGMigrations))
	l, err := lock.Postgres(ctx, pgURL, "shop", 0) // a `dbops run` applying
	if err != nil {
		t.Fatal(err)
	}
	p := startDbops(t, f, false, "apply", "--auto-approve", "--hold-locks-max", "0", "stack.yaml")
	p.waitFor(t, "Waiting for it to finish")
	if out := p.output(); !strings.Contains(out, "up   00001_a.sql") || !strings.Contains(out, "each stack is locked only while it is applied") {
		t.Fatalf("the plan was not shown before the lock:\n%s", out)
	}
	// Meanwhile the holder applies migration 1.
	db := testsrv.OpenDB(t, pgURL)
	gp, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS(filepath.Join(f.Dir, "migrations")), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gp.ApplyVersion(ctx, 1, true); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	code := p.wait(t)
	out := p.output()
	if code != 1 || !strings.Contains(out, "changed since the plan was shown") {
		t.Errorf("exit %d, want 1 and the stack refused as moved:\n%s", code, out)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM goose_db_version WHERE version_id = 2").Scan(&n); err != nil || n != 0 {
		t.Errorf("migration 2 applied from a plan made before migration 1 was (%d, %v):\n%s", n, err, out)
	}
}
