// Package clitest holds what the tests that run the real dbops binary share,
// so the CLI tests next to cmd/dbops and the reconcile tests that also drive
// the binary use one copy: a temp repository fixture, the binary built once
// per test run, and a few stack and database helpers.
package clitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/schemas"
	"github.com/amanat/dbops/spec"
)

// Fixture is a temp repository holding one stack's YAML and migrations.
type Fixture struct {
	Dir string
	Env map[string]string
}

// NewFixture makes a fixture holding migrations under migrations/.
func NewFixture(t *testing.T, migrations map[string]string) *Fixture {
	t.Helper()
	// A cache folder of its own: dbops caches expected schemas of drift
	// checks below XDG_CACHE_HOME, never in the user's.
	f := &Fixture{Dir: t.TempDir(), Env: map[string]string{"XDG_CACHE_HOME": t.TempDir()}}
	f.Write(t, ".git/HEAD", "ref: refs/heads/main\n")
	for name, body := range migrations {
		f.Write(t, filepath.Join("migrations", name), body)
	}
	return f
}

// Write writes a file below the fixture's directory.
func (f *Fixture) Write(t *testing.T, name, body string) {
	t.Helper()
	p := filepath.Join(f.Dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Dbops builds the real binary once per test run.
func Dbops(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dbops-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "dbops")
		// By import path, so it builds from any package's directory.
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/amanat/dbops/cmd/dbops").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("building dbops: %v", buildErr)
	}
	return binPath
}

// Result is one finished dbops invocation.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run runs dbops with args in the fixture's directory, with only PATH, HOME
// and the fixture's Env in its environment.
func (f *Fixture) Run(t *testing.T, args ...string) Result {
	t.Helper()
	cmd := exec.Command(Dbops(t), args...)
	cmd.Dir = f.Dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range f.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return Result{code, out.String(), errb.String()}
}

// Mig makes a goose migration file from its up and down SQL.
func Mig(up, down string) string {
	return "-- +goose Up\n" + up + "\n-- +goose Down\n" + down + "\n"
}

// ThreeMigrations: users, orders, and an index built CONCURRENTLY.
var ThreeMigrations = map[string]string{
	"00001_users.sql":  Mig("CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL);", "DROP TABLE users;"),
	"00002_orders.sql": Mig("CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint REFERENCES users(id), data jsonb);", "DROP TABLE orders;"),
	"00003_index.sql":  "-- +goose NO TRANSACTION\n" + Mig("CREATE INDEX CONCURRENTLY orders_user_idx ON orders (user_id);", "DROP INDEX CONCURRENTLY orders_user_idx;"),
}

// StackYAML wraps a spec body in a Stack document named name.
func StackYAML(name, body string) string {
	return "apiVersion: dbops/v1\nkind: Stack\nmetadata:\n  name: " + name + "\nspec:\n" + body
}

// PGMigrations is a stack body with only the migrations in ./migrations
// of the database at ${PG_URL}.
const PGMigrations = "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: ./migrations}\n"

// CLIStack is a stack with migrations and two Redis parameters.
const CLIStack = `apiVersion: dbops/v1
kind: Stack
metadata:
  name: shop
spec:
  postgres:
    url: ${PG_URL}
    migrations: {dir: ./migrations}
  redis:
    url: ${REDIS_URL}
    config:
      maxmemory: 128mb
      appendonly: yes
`

// BackupStack is a stack with a Postgres and a Redis backup below dest;
// extra goes before the backups list.
func BackupStack(dest, extra string) string {
	return StackYAML("shop", `  postgres:
    url: ${PG_URL}
    migrations: {dir: ./migrations}
  redis:
    url: ${REDIS_URL}
    config: {maxmemory: 64mb}
`+extra+`  backups:
    - name: pg
      source: postgres
      schedule: "0 3 * * *"
      timezone: Europe/Berlin
      destination: `+dest+`/pg
      retention: {keepLast: 1}
      verify: restore
    - name: cache
      source: redis
      schedule: "@daily"
      destination: `+dest+`/redis
      retention: {keepLast: 2}
`)
}

// DBVersion is the migration version dbops's ledger records in url's database.
func DBVersion(t *testing.T, url string) int64 {
	t.Helper()
	db := testsrv.OpenDB(t, url)
	st, err := postgres.Observe(context.Background(), db, spec.DefaultMigrationTable)
	if err != nil {
		t.Fatal(err)
	}
	return st.Version()
}

// CheckPlanJSON validates a JSON plan against schemas/plan.schema.json.
func CheckPlanJSON(t *testing.T, out string, wantChanges int) {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		t.Fatalf("plan JSON: %v\n%s", err, out)
	}
	sdoc, _ := jsonschema.UnmarshalJSON(bytes.NewReader(schemas.Plan))
	c := jsonschema.NewCompiler()
	if err := c.AddResource("plan.schema.json", sdoc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("plan.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(doc); err != nil {
		t.Errorf("plan JSON does not match its schema: %v", err)
	}
	var p struct {
		Stacks []struct {
			Changes []map[string]any `json:"changes"`
		} `json:"stacks"`
	}
	json.Unmarshal([]byte(out), &p)
	if len(p.Stacks) != 1 || len(p.Stacks[0].Changes) != wantChanges {
		t.Fatalf("plan JSON has %+v, want %d changes", p, wantChanges)
	}
	for _, ch := range p.Stacks[0].Changes {
		for _, k := range []string{"stack", "resource", "action", "before", "after"} {
			if _, ok := ch[k]; !ok {
				t.Errorf("change %v lacks %q", ch, k)
			}
		}
	}
}

// Monitor opens the test's own session on the database (application_name
// dbops-test, so it is never mistaken for dbops).
func Monitor(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["application_name"] = "dbops-test"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// QueryRow scans one row of sql into dest, failing the test on error.
func QueryRow(t *testing.T, db *pgx.Conn, sql string, args []any, dest ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.QueryRow(ctx, sql, args...).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
