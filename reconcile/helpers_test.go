package reconcile_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/reconcile/render"
	"github.com/amanat/dbops/spec"
)

func TestMain(m *testing.M) { testsrv.Main(m) }

// fixture is a temp repository holding one stack's YAML and migrations.
type fixture struct {
	dir string
	env map[string]string
}

func newFixture(t *testing.T, migrations map[string]string) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), env: map[string]string{}}
	f.write(t, ".git/HEAD", "ref: refs/heads/main\n")
	for name, body := range migrations {
		f.write(t, filepath.Join("migrations", name), body)
	}
	return f
}

func (f *fixture) write(t *testing.T, name, body string) {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// load writes the stack YAML and loads it like the CLI does.
func (f *fixture) load(t *testing.T, yaml string) []spec.Stack {
	t.Helper()
	f.write(t, "stack.yaml", yaml)
	res, err := spec.Load([]string{filepath.Join(f.dir, "stack.yaml")}, spec.Options{
		Getenv: func(k string) (string, bool) { v, ok := f.env[k]; return v, ok },
	})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return res.Stacks
}

// up and down make a goose migration file.
func mig(up, down string) string {
	return "-- +goose Up\n" + up + "\n-- +goose Down\n" + down + "\n"
}

var threeMigrations = map[string]string{
	"00001_users.sql":  mig("CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL);", "DROP TABLE users;"),
	"00002_orders.sql": mig("CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint REFERENCES users(id), data jsonb);", "DROP TABLE orders;"),
	"00003_index.sql":  "-- +goose NO TRANSACTION\n" + mig("CREATE INDEX CONCURRENTLY orders_user_idx ON orders (user_id);", "DROP INDEX CONCURRENTLY orders_user_idx;"),
}

func stackYAML(name, body string) string {
	return "apiVersion: dbops/v1\nkind: Stack\nmetadata:\n  name: " + name + "\nspec:\n" + body
}

func plan(t *testing.T, stacks []spec.Stack) *reconcile.Plan {
	t.Helper()
	return reconcile.PlanStacks(context.Background(), stacks, reconcile.Options{})
}

func mustApply(t *testing.T, stacks []spec.Stack, p *reconcile.Plan) *reconcile.Result {
	t.Helper()
	res := reconcile.Apply(context.Background(), stacks, p, reconcile.Options{})
	if res.Failed() {
		var b strings.Builder
		render.ResultText(&b, res, render.Style{})
		t.Fatalf("apply failed:\n%s", b.String())
	}
	return res
}

func planText(p *reconcile.Plan) string {
	var b strings.Builder
	render.PlanText(&b, p, render.Style{})
	return b.String()
}

func dbVersion(t *testing.T, url string) int64 {
	t.Helper()
	db := testsrv.OpenDB(t, url)
	st, err := postgres.Observe(context.Background(), db, spec.DefaultMigrationTable)
	if err != nil {
		t.Fatal(err)
	}
	return st.Version()
}
