package reconcile_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/lock"
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

// TestInSyncPlanStatements pins what a plan of a goose stack in sync costs
// its session, seen on the wire: one statement for whether goose's table
// and the checksum ledger exist, one reading both (the version comes with
// the login), each in one round trip. At fleet size these statements, each
// paying a fresh session's catalog look-ups, are most of a no-change cycle
// after the login itself; a new one must be worth it.
func TestInSyncPlanStatements(t *testing.T) {
	f := clitest.NewFixture(t, map[string]string{
		"00001_a.sql": clitest.Mig("CREATE TABLE a (id int);", "DROP TABLE a;"),
		"00002_b.sql": clitest.Mig("CREATE TABLE b (id int);", "DROP TABLE b;"),
	})
	proxy, url := testsrv.NewPGProxy(t, testsrv.PostgresDB(t))
	f.Env["PG_URL"] = url
	f.Env["REDIS_URL"] = testsrv.NewRedis(t, testsrv.RedisOptions{}).URL()
	sts := load(t, f, clitest.CLIStack)
	ctx := context.Background()
	if res := reconcile.Apply(ctx, sts, plan(t, sts), reconcile.Options{}); res.Failed() {
		var b strings.Builder
		render.ResultText(&b, res, render.Style{})
		t.Fatalf("apply:\n%s", b.String())
	}
	for _, kept := range []bool{false, true} {
		o := reconcile.Options{}
		if kept {
			p := pool.New(pool.Options{Idle: time.Hour})
			defer p.Close()
			o.Pool = p
			reconcile.PlanStacks(ctx, sts, o) // opens the session kept
		}
		proxy.Reset()
		sp := reconcile.PlanStacks(ctx, sts, o).Stacks[0]
		if len(sp.Errors) > 0 || len(sp.Changes) > 0 {
			t.Fatalf("plan: errors %v, changes %+v; want a stack in sync", sp.Errors, sp.Changes)
		}
		stmts := proxy.Statements()
		if len(stmts) != 2 || proxy.RoundTrips() != 2 {
			t.Errorf("plan of a stack in sync (session kept: %v) sent %d statements in %d round trips, want 2 in 2 (existence of goose's table and the ledger; both read in one; the version comes with the login):\n%s",
				kept, len(stmts), proxy.RoundTrips(), strings.Join(stmts, "\n"))
		}
		if want := map[bool]int{false: 1, true: 0}[kept]; proxy.Connections() != want {
			t.Errorf("plan (session kept: %v) made %d connections, want %d", kept, proxy.Connections(), want)
		}
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
	// A proxy in front of the server counts the connections made.
	proxy, through := testsrv.NewPGProxy(t, raw)
	u, err := url.Parse(through)
	if err != nil {
		t.Fatal(err)
	}
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
	if n := proxy.Connections(); n != 2 {
		t.Fatalf("first prefer session: %d TCP connections, want 2 (TLS refused, then plain)", n)
	}
	if session() {
		t.Fatal("TLS session to a server without TLS")
	}
	if n := proxy.Connections(); n != 3 {
		t.Errorf("second prefer session: %d TCP connections in all, want 3 (the refused TLS attempt not repeated)", n)
	}
	// The stack lock's own session too.
	l, err := lock.Postgres(context.Background(), u.String(), "prefer", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := proxy.Connections(); n != 4 {
		t.Errorf("lock session after a refused TLS: %d TCP connections in all, want 4 (the refused TLS attempt not repeated)", n)
	}
}
