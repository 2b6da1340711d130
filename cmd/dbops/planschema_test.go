package main_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/ajvtest"
	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
)

// TestPlanJSONMatchesSchema validates the JSON that `dbops plan --format
// json` prints, against throwaway servers, with ajv: a plan holding
// migrations (one risky and deferred), a Redis change, a due backup and a
// backup retention deletes, and a drizzle stack adopted with a baseline, so
// every kind, action and field appears.
func TestPlanJSONMatchesSchema(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	f := clitest.NewFixture(t, map[string]string{
		"00001_t.sql": clitest.Mig("CREATE TABLE t (id int); INSERT INTO t VALUES (1);", "DROP TABLE t;"),
	})
	f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
	// A table with a row, so that dropping it is risky.
	f.Write(t, "stack.yaml", clitest.StackYAML("shop", clitest.PGMigrations))
	if res := f.Run(t, "apply", "--auto-approve", "stack.yaml"); res.Code != 0 {
		t.Fatalf("apply: %+v", res)
	}
	f.Write(t, "migrations/00002_drop.sql", clitest.Mig("DROP TABLE t;", "CREATE TABLE t (id int);"))
	f.Write(t, "migrations/00003_u.sql", clitest.Mig("CREATE TABLE u (id int);", "DROP TABLE u;"))
	dest := t.TempDir()
	f.Write(t, "stack.yaml", clitest.StackYAML("shop", `  postgres:
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
		if res := f.Run(t, "backup", "run", "-f", "stack.yaml", "shop/pg"); res.Code != 0 {
			t.Fatalf("backup run: %+v", res)
		}
	}
	// A second stack: drizzle-kit output on a database that predates dbops
	// (a table, no drizzle table), adopted with a baseline.
	legacyURL := testsrv.PostgresDB(t)
	if _, err := testsrv.OpenDB(t, legacyURL).Exec("CREATE TABLE a (id int)"); err != nil {
		t.Fatal(err)
	}
	f.Env["LEGACY_URL"] = legacyURL
	f.Write(t, "drizzle/0000_a.sql", "CREATE TABLE \"a\" (\"id\" int);")
	f.Write(t, "drizzle/0001_b.sql", "CREATE TABLE \"b\" (\"id\" int);\n--> statement-breakpoint\nCREATE INDEX \"b_id\" ON \"b\" (\"id\");")
	f.Write(t, "drizzle/meta/_journal.json", `{"version":"7","dialect":"postgresql","entries":[
{"idx":0,"version":"7","when":1700000000000,"tag":"0000_a","breakpoints":true},
{"idx":1,"version":"7","when":1700000001000,"tag":"0001_b","breakpoints":true}]}`)
	f.Write(t, "legacy.yaml", clitest.StackYAML("legacy", "  postgres:\n    url: ${LEGACY_URL}\n    migrations: {dir: ./drizzle, baseline: 0000_a}\n"))
	res := f.Run(t, "plan", "--format", "json", "stack.yaml", "legacy.yaml")
	if res.Code != 0 {
		t.Fatalf("plan: %+v", res)
	}
	var p struct {
		Stacks []struct {
			Postgres struct {
				Format, LevelAfter string
			} `json:"postgres"`
			Backups []json.RawMessage `json:"backups"`
			Changes []struct {
				Kind, Action, Risk, Deferred string
			} `json:"changes"`
		} `json:"stacks"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &p); err != nil || len(p.Stacks) != 2 {
		t.Fatalf("plan JSON: %v\n%s", err, res.Stdout)
	}
	seen := map[string]bool{}
	for _, st := range p.Stacks {
		seen["format "+st.Postgres.Format] = true
		seen["drizzle level"] = seen["drizzle level"] || st.Postgres.LevelAfter == "0001_b"
		for _, c := range st.Changes {
			seen[c.Kind+" "+c.Action] = true
			seen["risk"] = seen["risk"] || c.Risk != ""
			seen["deferred"] = seen["deferred"] || c.Deferred != ""
		}
	}
	for _, want := range []string{"postgres.migration up", "postgres.migration baseline", "redis.config update", "backup backup", "backup.prune delete",
		"risk", "deferred", "format goose", "format drizzle", "drizzle level"} {
		if !seen[want] {
			t.Errorf("the plan lacks %q, so the test would not cover it:\n%s", want, res.Stdout)
		}
	}
	if len(p.Stacks[0].Backups) != 2 {
		t.Errorf("plan lists %d backup jobs, want 2", len(p.Stacks[0].Backups))
	}

	v := ajvtest.Validate(t, "schemas/plan.schema.json", []json.RawMessage{json.RawMessage(res.Stdout)})[0]
	if !v.Valid {
		t.Errorf("plan JSON does not match schemas/plan.schema.json:\n%s\n%s", strings.Join(v.Errors, "\n"), res.Stdout)
	}
}
