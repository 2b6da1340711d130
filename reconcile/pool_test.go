package reconcile_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/pool"
	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/reconcile/render"
)

// TestPlanPoolAcrossCycles plans and applies stacks through a pool, as
// `dbops run` does, for several cycles: the apply succeeds although the plan
// sessions kept in the pool are read-only (the apply session is its own),
// every stack ends in sync, and the dbops sessions left on the server stay
// within the pool's bound.
func TestPlanPoolAcrossCycles(t *testing.T) {
	const stacks, perServer = 5, 2
	f := clitest.NewFixture(t, map[string]string{"00001_a.sql": clitest.Mig("CREATE TABLE a (id int);", "DROP TABLE a;")})
	var yaml strings.Builder
	var names []string
	for i := range stacks {
		env := fmt.Sprintf("PG_URL_%d", i)
		f.Env[env] = testsrv.PostgresDB(t)
		cfg, err := pgx.ParseConfig(f.Env[env])
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, cfg.Database)
		if i > 0 {
			yaml.WriteString("---\n")
		}
		yaml.WriteString(clitest.StackYAML(fmt.Sprintf("s%d", i), "  postgres:\n    url: ${"+env+"}\n    migrations: {dir: ./migrations}\n"))
	}
	sts := load(t, f, yaml.String())
	db := clitest.Monitor(t, f.Env["PG_URL_0"])
	p := pool.New(pool.Options{Idle: time.Hour, MaxPerServer: perServer})
	defer p.Close()
	o := reconcile.Options{Pool: p}
	ctx := context.Background()
	for c := range 4 {
		plan := reconcile.PlanStacks(ctx, sts, o)
		changes := 0
		for _, sp := range plan.Stacks {
			if len(sp.Errors) > 0 {
				t.Fatalf("cycle %d: plan of %s: %v", c, sp.Stack, sp.Errors)
			}
			changes += len(sp.Changes)
		}
		if want := map[bool]int{true: stacks, false: 0}[c == 0]; changes != want {
			t.Fatalf("cycle %d: %d changes planned, want %d", c, changes, want)
		}
		if changes > 0 {
			if res := reconcile.Apply(ctx, sts, plan, o); res.Failed() {
				var b strings.Builder
				render.ResultText(&b, res, render.Style{})
				t.Fatalf("cycle %d: apply with a pool of read-only plan sessions failed:\n%s", c, b.String())
			}
		}
		var n int
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			clitest.QueryRow(t, db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dbops' AND datname = ANY($1)", []any{names}, &n)
			if n <= perServer || time.Now().After(deadline) {
				break
			}
		}
		if n > perServer {
			t.Errorf("cycle %d: %d dbops sessions on the server between cycles, want at most %d", c, n, perServer)
		}
	}
	for i := range stacks {
		if v := clitest.DBVersion(t, f.Env[fmt.Sprintf("PG_URL_%d", i)]); v != 1 {
			t.Errorf("s%d at version %d, want 1", i, v)
		}
	}
}

// The statements of a plan all fit in a kept plan session's statement
// cache (postgres.PlanStatementCache), so a no-change cycle runs them
// prepared instead of evicting and re-preparing them every cycle.
func TestPlanFitsStatementCache(t *testing.T) {
	f := clitest.NewFixture(t, map[string]string{
		"00001_a.sql": clitest.Mig("CREATE TABLE a (id int);", "DROP TABLE a;"),
		"00002_b.sql": clitest.Mig("CREATE TABLE b (id int);", "DROP TABLE b;"),
	})
	f.Env["PG_URL"] = testsrv.PostgresDB(t)
	f.Env["REDIS_URL"] = testsrv.NewRedis(t, testsrv.RedisOptions{}).URL()
	sts := load(t, f, clitest.CLIStack)
	p := pool.New(pool.Options{Idle: time.Hour})
	defer p.Close()
	o := reconcile.Options{Pool: p}
	ctx := context.Background()
	for c := range 3 {
		plan := reconcile.PlanStacks(ctx, sts, o)
		for _, sp := range plan.Stacks {
			if len(sp.Errors) > 0 {
				t.Fatalf("cycle %d: plan: %v", c, sp.Errors)
			}
		}
		if c == 0 {
			if res := reconcile.Apply(ctx, sts, plan, o); res.Failed() {
				var b strings.Builder
				render.ResultText(&b, res, render.Style{})
				t.Fatalf("apply:\n%s", b.String())
			}
		}
	}
	db, release, err := p.Postgres(f.Env["PG_URL"], o.Timeout()) // the plan's handle
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM pg_prepared_statements").Scan(&n); err != nil {
		t.Fatal(err)
	}
	// n counts the counting statement too.
	if n < 3 || n >= postgres.PlanStatementCache {
		t.Errorf("%d statements prepared on the kept plan session, want between 3 and %d (a full cache means a plan evicts its own statements)", n, postgres.PlanStatementCache-1)
	}
	t.Logf("%d statements prepared on the kept plan session", n)
}

// TestInSyncPlanStatements pins what a plan of a goose stack in sync costs
// its session: one statement for whether goose's table and the checksum
// ledger exist, and one reading both (the version comes with the login). At fleet size these
// statements, each paying a fresh session's catalog look-ups, are most of
// a no-change cycle; a new one must be worth it.
func TestInSyncPlanStatements(t *testing.T) {
	f := clitest.NewFixture(t, map[string]string{
		"00001_a.sql": clitest.Mig("CREATE TABLE a (id int);", "DROP TABLE a;"),
		"00002_b.sql": clitest.Mig("CREATE TABLE b (id int);", "DROP TABLE b;"),
	})
	f.Env["PG_URL"] = testsrv.PostgresDB(t)
	f.Env["REDIS_URL"] = testsrv.NewRedis(t, testsrv.RedisOptions{}).URL()
	sts := load(t, f, clitest.CLIStack)
	ctx := context.Background()
	if res := reconcile.Apply(ctx, sts, plan(t, sts), reconcile.Options{}); res.Failed() {
		var b strings.Builder
		render.ResultText(&b, res, render.Style{})
		t.Fatalf("apply:\n%s", b.String())
	}
	p := pool.New(pool.Options{Idle: time.Hour})
	defer p.Close()
	o := reconcile.Options{Pool: p}
	sp := reconcile.PlanStacks(ctx, sts, o).Stacks[0]
	if len(sp.Errors) > 0 || len(sp.Changes) > 0 {
		t.Fatalf("plan: errors %v, changes %+v; want a stack in sync", sp.Errors, sp.Changes)
	}
	db, release, err := p.Postgres(f.Env["PG_URL"], o.Timeout()) // the plan's session
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	rows, err := db.QueryContext(ctx, "SELECT statement FROM pg_prepared_statements WHERE statement NOT LIKE '%pg_prepared_statements%' ORDER BY prepare_time")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var stmts []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(stmts) != 2 {
		t.Errorf("plan of a stack in sync ran %d statements, want 2 (existence of goose's table and the ledger; both read in one; the version comes with the login):\n%s", len(stmts), strings.Join(stmts, "\n"))
	}
}

// The version plan shows, read from the login's ParameterStatus without a
// statement, is the server's own server_version and server_version_num.
func TestServerVersionFromLogin(t *testing.T) {
	url := testsrv.PostgresDB(t)
	db, err := postgres.Open(url, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	version, num, err := postgres.ServerVersion(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	var wantVersion string
	var wantNum int
	if err := db.QueryRowContext(ctx, "SELECT current_setting('server_version'), current_setting('server_version_num')::int").Scan(&wantVersion, &wantNum); err != nil {
		t.Fatal(err)
	}
	if version != wantVersion || num != wantNum {
		t.Errorf("ServerVersion = %q, %d; the server says %q, %d", version, num, wantVersion, wantNum)
	}
}

// With sslmode=prefer (the default) against a server without TLS, pgx
// makes two TCP connections per session (TLS, refused; then plain). dbops
// remembers the refusal for a while: the next session to that server is
// one connection, and still plain as prefer would make it.
func TestPreferSkipsRefusedTLS(t *testing.T) {
	raw := testsrv.PostgresDB(t)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	// A TCP proxy in front of the server counts the connections made.
	server := u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", server)
				if err != nil {
					return
				}
				defer s.Close()
				go func() { io.Copy(s, c); s.Close() }()
				io.Copy(c, s)
			}()
		}
	}()
	u.Host = ln.Addr().String()
	q := u.Query()
	q.Set("sslmode", "prefer")
	u.RawQuery = q.Encode()
	session := func() (ssl bool) {
		t.Helper()
		db, err := postgres.Open(u.String(), 0, true)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.QueryRow("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil {
			t.Fatal(err)
		}
		return ssl
	}
	if session() {
		t.Fatal("TLS session to a server without TLS")
	}
	if n := accepted.Load(); n != 2 {
		t.Fatalf("first prefer session: %d TCP connections, want 2 (TLS refused, then plain)", n)
	}
	if session() {
		t.Fatal("TLS session to a server without TLS")
	}
	if n := accepted.Load(); n != 3 {
		t.Errorf("second prefer session: %d TCP connections in all, want 3 (the refused TLS attempt not repeated)", n)
	}
}
