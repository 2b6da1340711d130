package reconcile_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/ajvtest"
	"github.com/amanat/dbops/reconcile/internal/testsrv"
)

// TestPlanJSONMatchesSchema validates the JSON that `dbops plan --format
// json` prints, against throwaway servers, with ajv: a plan holding
// migrations (one risky and deferred), a Redis change, a due backup and a
// backup retention deletes, so every kind, action and field appears.
func TestPlanJSONMatchesSchema(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	f := newFixture(t, map[string]string{
		"00001_t.sql": mig("CREATE TABLE t (id int); INSERT INTO t VALUES (1);", "DROP TABLE t;"),
	})
	f.env["PG_URL"], f.env["REDIS_URL"] = pgURL, r.URL()
	// A table with a row, so that dropping it is risky.
	f.write(t, "stack.yaml", stackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: ./migrations}\n"))
	if res := f.run(t, "apply", "--auto-approve", "stack.yaml"); res.code != 0 {
		t.Fatalf("apply: %+v", res)
	}
	f.write(t, "migrations/00002_drop.sql", mig("DROP TABLE t;", "CREATE TABLE t (id int);"))
	f.write(t, "migrations/00003_u.sql", mig("CREATE TABLE u (id int);", "DROP TABLE u;"))
	dest := t.TempDir()
	f.write(t, "stack.yaml", stackYAML("shop", `  postgres:
    url: ${PG_URL}
    migrations: {dir: ./migrations}
  redis:
    url: ${REDIS_URL}
    config: {maxmemory: 64mb}
  maintenanceWindows:
    - {start: "0 2 29 2 *", duration: 1m}   # Feb 29, 02:00-02:01: closed now
  backups:
    - {name: pg, source: postgres, schedule: "@daily", destination: `+dest+`/pg, retention: {keepLast: 1}}
    - {name: cache, source: redis, schedule: "@daily", destination: `+dest+`/redis, retention: {keepLast: 1}}
`))
	for range 2 { // two pg backups: keepLast 1 deletes the older
		if res := f.run(t, "backup", "run", "-f", "stack.yaml", "shop/pg"); res.code != 0 {
			t.Fatalf("backup run: %+v", res)
		}
	}
	res := f.run(t, "plan", "--format", "json", "stack.yaml")
	if res.code != 0 {
		t.Fatalf("plan: %+v", res)
	}
	var p struct {
		Stacks []struct {
			Backups []json.RawMessage `json:"backups"`
			Changes []struct {
				Kind, Action, Risk, Deferred string
			} `json:"changes"`
		} `json:"stacks"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &p); err != nil || len(p.Stacks) != 1 {
		t.Fatalf("plan JSON: %v\n%s", err, res.stdout)
	}
	seen := map[string]bool{}
	for _, c := range p.Stacks[0].Changes {
		seen[c.Kind+" "+c.Action] = true
		seen["risk"] = seen["risk"] || c.Risk != ""
		seen["deferred"] = seen["deferred"] || c.Deferred != ""
	}
	for _, want := range []string{"postgres.migration up", "redis.config update", "backup backup", "backup.prune delete", "risk", "deferred"} {
		if !seen[want] {
			t.Errorf("the plan lacks %q, so the test would not cover it:\n%s", want, res.stdout)
		}
	}
	if len(p.Stacks[0].Backups) != 2 {
		t.Errorf("plan lists %d backup jobs, want 2", len(p.Stacks[0].Backups))
	}

	v := ajvtest.Validate(t, "schemas/plan.schema.json", []json.RawMessage{json.RawMessage(res.stdout)})[0]
	if !v.Valid {
		t.Errorf("plan JSON does not match schemas/plan.schema.json:\n%s\n%s", strings.Join(v.Errors, "\n"), res.stdout)
	}
}
