package main_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
)

func TestSavedPlan(t *testing.T) {
	pg := testsrv.SharedPostgres(t)
	tests := []struct {
		name      string
		between   func(t *testing.T, f *clitest.Fixture, c *goredis.Client)
		wantMoved []string // empty: applied
	}{
		{name: "nothing moved", between: func(*testing.T, *clitest.Fixture, *goredis.Client) {}},
		{
			name: "redis moved",
			between: func(t *testing.T, _ *clitest.Fixture, c *goredis.Client) {
				c.ConfigSet(context.Background(), "maxmemory", "1000000")
			},
			wantMoved: []string{`stack shop: redis maxmemory was "0", now "1000000"`},
		},
		{
			name: "migration version moved",
			between: func(t *testing.T, f *clitest.Fixture, _ *goredis.Client) {
				g := clitest.NewFixture(t, map[string]string{"00001_users.sql": clitest.ThreeMigrations["00001_users.sql"]})
				g.Env = f.Env
				g.Write(t, "stack.yaml", clitest.StackYAML("shop", clitest.PGMigrations))
				if res := g.Run(t, "apply", "--auto-approve", "stack.yaml"); res.Code != 0 {
					t.Fatalf("moving the version: %+v", res)
				}
			},
			wantMoved: []string{"stack shop: postgres migration version was 0, now 1"},
		},
		{
			name: "spec file changed",
			between: func(t *testing.T, f *clitest.Fixture, _ *goredis.Client) {
				f.Write(t, "stack.yaml", strings.Replace(clitest.CLIStack, "128mb", "512mb", 1))
			},
			wantMoved: []string{"spec file stack.yaml changed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pgURL := testsrv.PostgresDB(t)
			r := testsrv.NewRedis(t, testsrv.RedisOptions{Password: "savedPw-2207"})
			f := clitest.NewFixture(t, clitest.ThreeMigrations)
			f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
			f.Write(t, "stack.yaml", clitest.CLIStack)
			res := f.Run(t, "plan", "--out", "plan.json", "stack.yaml")
			if res.Code != 0 {
				t.Fatalf("plan --out: %+v", res)
			}
			saved, _ := os.ReadFile(filepath.Join(f.Dir, "plan.json"))
			for _, secret := range []string{pg.Password, r.Password} {
				if strings.Contains(string(saved), secret) {
					t.Fatalf("the saved plan holds a password")
				}
			}
			tt.between(t, f, r.Client(t))
			res = f.Run(t, "apply", "plan.json")
			if len(tt.wantMoved) == 0 {
				if res.Code != 0 || !strings.Contains(res.Stdout, "Apply: 5 done, 0 failed") {
					t.Fatalf("apply of an unmoved saved plan: %+v", res)
				}
				if v := clitest.DBVersion(t, pgURL); v != 3 {
					t.Errorf("version %d after applying the saved plan, want 3", v)
				}
				return
			}
			if res.Code != 1 || !strings.Contains(res.Stderr, "refusing to apply plan.json") {
				t.Fatalf("apply of a moved plan was not refused: %+v", res)
			}
			for _, w := range tt.wantMoved {
				if !strings.Contains(res.Stderr, w) {
					t.Errorf("refusal does not say %q:\n%s", w, res.Stderr)
				}
			}
			if got := testsrv.ConfigGet(t, r.Client(t), "appendonly"); got != "no" {
				t.Errorf("a refused saved plan changed appendonly to %s", got)
			}
		})
	}
}
