package testsrv

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	goredis "github.com/redis/go-redis/v9"
)

var (
	binsOnce sync.Once
	binsErr  error

	shared struct {
		mu  sync.Mutex
		pg  *Postgres
		err error
		n   int // databases created so far
	}
)

// Servers skips the test under -short (go test -short runs only offline
// tests); otherwise a missing PostgreSQL or redis-server binary is a
// t.Fatal, never a skip.
func Servers(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("testsrv: needs PostgreSQL and redis-server; skipped with -short")
	}
	binsOnce.Do(func() {
		_, err1 := FindPostgresBin()
		_, err2 := FindRedisServer()
		if err1 != nil {
			binsErr = err1
		} else {
			binsErr = err2
		}
	})
	if binsErr != nil {
		t.Fatalf("%v (use -short to run only offline tests)", binsErr)
	}
}

// SharedPostgres returns the cluster shared by the whole test binary
// (started on first use) so tests can create roles etc. Calls Servers(t).
func SharedPostgres(t testing.TB) *Postgres {
	t.Helper()
	Servers(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.pg == nil && shared.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		shared.pg, shared.err = StartPostgres(ctx, PostgresOptions{})
		cancel()
	}
	if shared.err != nil {
		t.Fatalf("shared postgres: %v", shared.err)
	}
	return shared.pg
}

// PostgresDB returns the URL of a fresh, empty database in the shared
// cluster, named after the test. Calls Servers(t). The database is dropped
// (best effort) in t.Cleanup.
func PostgresDB(t testing.TB) string {
	t.Helper()
	pg := SharedPostgres(t)
	shared.mu.Lock()
	shared.n++
	name := dbName(t.Name(), shared.n)
	shared.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pg.CreateDatabase(ctx, name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = pg.Exec(ctx, "postgres", "DROP DATABASE IF EXISTS "+quoteIdent(name)+" WITH (FORCE)")
	})
	return pg.URL(name)
}

// NewRedis starts a redis-server for this test and stops it in t.Cleanup.
// Calls Servers(t).
func NewRedis(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	Servers(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := StartRedis(ctx, opts)
	if err != nil {
		t.Fatalf("start redis: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("stop redis: %v", err)
		}
	})
	return r
}

// NewPostgres starts a cluster of the test's own (for what must not reach
// the shared one: server settings, preloaded libraries, max_connections)
// and stops it when the test ends.
func NewPostgres(t testing.TB, opts PostgresOptions) *Postgres {
	t.Helper()
	Servers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := StartPostgres(ctx, opts)
	if err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	t.Cleanup(func() {
		if err := pg.Stop(); err != nil {
			t.Errorf("stop postgres: %v", err)
		}
	})
	return pg
}

// Main puts the client binaries under test first on PATH and prints the
// versions under test, runs the tests (m.Run), stops the shared cluster,
// and exits with m.Run's code. Use from TestMain.
func Main(m *testing.M) {
	useClientBins()
	announce()
	code := m.Run()
	shared.mu.Lock()
	pg := shared.pg
	shared.pg, shared.err = nil, fmt.Errorf("testsrv: shared postgres already stopped by Main")
	shared.mu.Unlock()
	if pg != nil {
		if err := pg.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "testsrv: stop shared postgres:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	if err := stopSharedS3(); err != nil {
		fmt.Fprintln(os.Stderr, "testsrv: stop shared S3 server:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// dbName makes a valid, lowercase identifier of at most 63 bytes from a
// test name and a counter.
func dbName(testName string, n int) string {
	var b strings.Builder
	b.WriteString("t_")
	underscore := true
	for _, c := range strings.ToLower(testName) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
			underscore = false
		} else if !underscore {
			b.WriteByte('_')
			underscore = true
		}
	}
	suffix := "_" + strconv.Itoa(n)
	base := strings.TrimRight(b.String(), "_")
	if len(base)+len(suffix) > 63 {
		base = strings.TrimRight(base[:63-len(suffix)], "_")
	}
	return base + suffix
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Client returns a go-redis client for r, closed when the test ends.
func (r *Redis) Client(t testing.TB) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: r.addr(), Password: r.Password})
	t.Cleanup(func() { c.Close() })
	return c
}

// ConfigGet returns the server's answer to CONFIG GET name.
func ConfigGet(t testing.TB, c *goredis.Client, name string) string {
	t.Helper()
	v, err := c.ConfigGet(context.Background(), name).Result()
	if err != nil {
		t.Fatal(err)
	}
	return v[name]
}

// OpenDB opens a database/sql handle on url (pgx), closed when the test ends.
func OpenDB(t testing.TB, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
