package pool_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	goredis "github.com/redis/go-redis/v9"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile/pool"
)

func TestMain(m *testing.M) { testsrv.Main(m) }

// pgSessions counts the dbops sessions on the given databases and maps
// each database to its sessions' backend pids.
func pgSessions(t *testing.T, mon *pgx.Conn, dbs []string) (int, map[string][]int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := mon.Query(ctx, "SELECT datname, pid FROM pg_stat_activity WHERE application_name = 'dbops' AND datname = ANY($1) ORDER BY pid", dbs)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n, pids := 0, map[string][]int{}
	for rows.Next() {
		var db string
		var pid int
		if err := rows.Scan(&db, &pid); err != nil {
			t.Fatal(err)
		}
		n++
		pids[db] = append(pids[db], pid)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n, pids
}

// databases makes n fresh databases on the shared server and returns their
// URLs and names, and a monitoring session of the test's own.
func databases(t *testing.T, n int) ([]string, []string, *pgx.Conn) {
	t.Helper()
	var urls, names []string
	for range n {
		u := testsrv.PostgresDB(t)
		cfg, err := pgx.ParseConfig(u)
		if err != nil {
			t.Fatal(err)
		}
		urls, names = append(urls, u), append(names, cfg.Database)
	}
	cfg, err := pgx.ParseConfig(urls[0])
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["application_name"] = "dbops-test"
	mon, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mon.Close(context.Background()) })
	return urls, names, mon
}

// cycle plans every database once, as a loop cycle does: borrow, query,
// give back; concurrently, like the loop's worker pool.
func cycle(t *testing.T, p *pool.Pool, urls []string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(urls))
	for _, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, release, err := p.Postgres(u, 5*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer release()
			var one int
			errs <- db.QueryRowContext(context.Background(), "SELECT 1").Scan(&one)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Over several cycles on more databases than the bound, the sessions held
// between cycles stay within MaxPerServer, and the databases that got a
// kept handle are served by the same backend every cycle (no reconnect).
func TestPostgresSessionsBounded(t *testing.T) {
	for _, tc := range []struct {
		dbs, max int
	}{
		{dbs: 6, max: 3},
		{dbs: 4, max: 8},
	} {
		t.Run(fmt.Sprintf("%d databases, %d per server", tc.dbs, tc.max), func(t *testing.T) {
			urls, names, mon := databases(t, tc.dbs)
			p := pool.New(pool.Options{Idle: time.Hour, MaxPerServer: tc.max})
			defer p.Close()
			var first map[string][]int
			for c := range 4 {
				cycle(t, p, urls)
				// The sessions of handles closed after use take a moment to
				// leave pg_stat_activity; the kept ones never do.
				want := min(tc.dbs, tc.max)
				n, pids := pgSessions(t, mon, names)
				for deadline := time.Now().Add(10 * time.Second); n != want && time.Now().Before(deadline); {
					time.Sleep(20 * time.Millisecond)
					n, pids = pgSessions(t, mon, names)
				}
				if n != want {
					t.Errorf("cycle %d: %d dbops sessions held between cycles, want %d (min of databases and MaxPerServer)", c, n, want)
				}
				for db, ps := range pids {
					if len(ps) != 1 {
						t.Errorf("cycle %d: database %s has %d idle dbops sessions, want 1", c, db, len(ps))
					}
				}
				if c == 0 {
					first = pids
					continue
				}
				if fmt.Sprint(pids) != fmt.Sprint(first) {
					t.Errorf("cycle %d: sessions %v, want the same backends as after the first cycle %v", c, pids, first)
				}
			}
			if got := p.Held(); got != min(tc.dbs, tc.max) {
				t.Errorf("Held() = %d, want %d", got, min(tc.dbs, tc.max))
			}
		})
	}
}

// The plan's pooled session is read-only on the server's side.
func TestPostgresReadOnly(t *testing.T) {
	urls, _, _ := databases(t, 1)
	p := pool.New(pool.Options{})
	defer p.Close()
	for i := range 2 { // a fresh session, then the kept one
		db, release, err := p.Postgres(urls[0], 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var ro string
		if err := db.QueryRow("SHOW default_transaction_read_only").Scan(&ro); err != nil {
			t.Fatal(err)
		}
		if ro != "on" {
			t.Errorf("use %d: default_transaction_read_only = %q, want on", i, ro)
		}
		_, err = db.Exec("CREATE TABLE written (id int)")
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "25006" {
			t.Errorf("use %d: CREATE TABLE on the plan session: %v, want SQLSTATE 25006 (read_only_sql_transaction)", i, err)
		}
		release()
	}
}

// Handles unused for Idle are closed with their sessions, on PostgreSQL and
// Redis; stacks sharing a Redis URL share a bounded number of connections.
func TestIdleClosedAndRedisShared(t *testing.T) {
	urls, names, mon := databases(t, 2)
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	// One connection of the test's own, so every other client is dbops's.
	opt, err := goredis.ParseURL(rd.URL())
	if err != nil {
		t.Fatal(err)
	}
	opt.PoolSize = 1
	rc := goredis.NewClient(opt)
	defer rc.Close()
	const idle = 300 * time.Millisecond
	p := pool.New(pool.Options{Idle: idle, RedisConns: 2})
	defer p.Close()

	cycle(t, p, urls)
	var wg sync.WaitGroup
	for range 10 { // ten stacks on one Redis, at once
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, release, err := p.Redis(rd.URL(), 5*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			defer release()
			if err := c.Ping(context.Background()).Err(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	dbopsClients := func() int {
		list, err := rc.ClientList(context.Background()).Result()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(strings.TrimSpace(list), "\n") // lines less the test's own
	}
	if n, _ := pgSessions(t, mon, names); n != 2 {
		t.Errorf("%d dbops sessions after use, want 2 (one per database)", n)
	}
	if n := dbopsClients(); n < 1 || n > 2 {
		t.Errorf("%d dbops connections to Redis for ten stacks on one URL, want 1 or 2 (RedisConns)", n)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		pgN, _ := pgSessions(t, mon, names)
		rN := dbopsClients()
		if pgN == 0 && rN == 0 && p.Held() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30s after last use (idle %s): %d PostgreSQL sessions, %d Redis connections, %d handles still held", idle, pgN, rN, p.Held())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A handle used after being reaped is opened again.
	cycle(t, p, urls[:1])
}

// A kept plan session prepares no statement: each runs in one round trip
// (pgx's exec mode), and the session holds no statement cache (pgx's
// default of 512 cost ~67 KB per kept session).
func TestPlanSessionPreparesNothing(t *testing.T) {
	urls, _, _ := databases(t, 1)
	p := pool.New(pool.Options{})
	defer p.Close()
	ctx := context.Background()
	db, release, err := p.Postgres(urls[0], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	conn, err := db.Conn(ctx) // one session for all the statements
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 5 {
		var n int
		if err := conn.QueryRowContext(ctx, fmt.Sprintf("SELECT %d + $1::int", i), 1).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM pg_prepared_statements").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d statements prepared on a plan session after 6 distinct statements, want 0", n)
	}
}
