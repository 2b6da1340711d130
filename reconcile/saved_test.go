package reconcile_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/amanat/dbops/internal/testsrv"
)

func TestSavedPlan(t *testing.T) {
	pg := testsrv.SharedPostgres(t)
	tests := []struct {
		name      string
		between   func(t *testing.T, f *fixture, c *goredis.Client)
		wantMoved []string // empty: applied
	}{
		{name: "nothing moved", between: func(*testing.T, *fixture, *goredis.Client) {}},
		{
			name: "redis moved",
			between: func(t *testing.T, _ *fixture, c *goredis.Client) {
				c.ConfigSet(context.Background(), "maxmemory", "1000000")
			},
			wantMoved: []string{`stack shop: redis maxmemory was "0", now "1000000"`},
		},
		{
			name: "migration version moved",
			between: func(t *testing.T, f *fixture, _ *goredis.Client) {
				g := newFixture(t, map[string]string{"00001_users.sql": threeMigrations["00001_users.sql"]})
				g.env = f.env
				g.write(t, "stack.yaml", stackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: ./migrations}\n"))
				if res := g.run(t, "apply", "--auto-approve", "stack.yaml"); res.code != 0 {
					t.Fatalf("moving the version: %+v", res)
				}
			},
			wantMoved: []string{"stack shop: postgres migration version was 0, now 1"},
		},
		{
			name: "spec file changed",
			between: func(t *testing.T, f *fixture, _ *goredis.Client) {
				f.write(t, "stack.yaml", strings.Replace(cliStack, "128mb", "512mb", 1))
			},
			wantMoved: []string{"spec file stack.yaml changed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pgURL := testsrv.PostgresDB(t)
			r := testsrv.NewRedis(t, testsrv.RedisOptions{Password: "savedPw-2207"})
			f := newFixture(t, threeMigrations)
			f.env["PG_URL"], f.env["REDIS_URL"] = pgURL, r.URL()
			f.write(t, "stack.yaml", cliStack)
			res := f.run(t, "plan", "--out", "plan.json", "stack.yaml")
			if res.code != 0 {
				t.Fatalf("plan --out: %+v", res)
			}
			saved, _ := os.ReadFile(filepath.Join(f.dir, "plan.json"))
			for _, secret := range []string{pg.Password, r.Password} {
				if strings.Contains(string(saved), secret) {
					t.Fatalf("the saved plan holds a password")
				}
			}
			tt.between(t, f, r.Client(t))
			res = f.run(t, "apply", "plan.json")
			if len(tt.wantMoved) == 0 {
				if res.code != 0 || !strings.Contains(res.stdout, "Apply: 5 done, 0 failed") {
					t.Fatalf("apply of an unmoved saved plan: %+v", res)
				}
				if v := dbVersion(t, pgURL); v != 3 {
					t.Errorf("version %d after applying the saved plan, want 3", v)
				}
				return
			}
			if res.code != 1 || !strings.Contains(res.stderr, "refusing to apply plan.json") {
				t.Fatalf("apply of a moved plan was not refused: %+v", res)
			}
			for _, w := range tt.wantMoved {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("refusal does not say %q:\n%s", w, res.stderr)
				}
			}
			if got := testsrv.ConfigGet(t, r.Client(t), "appendonly"); got != "no" {
				t.Errorf("a refused saved plan changed appendonly to %s", got)
			}
		})
	}
}
