package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/ajvtest"
	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
)

// TestKeyspaceJobsCLI: plan and apply with keyspace jobs through the
// binary; the JSON plan, holding a done, a pending and a waiting job,
// validates against schemas/plan.schema.json (ajv and the embedded
// validator).
func TestKeyspaceJobsCLI(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := r.Client(t)
	ctx := context.Background()
	for i := range 40 {
		c.Set(ctx, fmt.Sprintf("payment:idem:%d", i), "v", 0)
		c.Set(ctx, fmt.Sprintf("keep:%d", i), "v", 0)
		c.Set(ctx, fmt.Sprintf("keep2:%d", i), "v", 0)
	}
	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
	stack := func(jobs string) {
		f.Write(t, "stack.yaml", clitest.StackYAML("shop", `  postgres:
    url: ${PG_URL}
    migrations: {dir: ./migrations, target: 2}
  redis:
    url: ${REDIS_URL}
    keyspaceJobs:
`+jobs))
	}
	first := "      - {id: idem-v2, delete: {match: \"payment:idem:*\"}, after: 00001_users}\n"
	stack(first)
	res := f.Run(t, "apply", "--auto-approve", "stack.yaml")
	if res.Code != 0 || !strings.Contains(res.Stdout, "done    keyspace job idem-v2: 40 key(s) deleted") {
		t.Fatalf("apply: %+v", res)
	}
	stack(first + "      - {id: keep-v2, delete: {match: \"keep:*\"}}\n      - {id: later, delete: {match: \"keep2:*\"}, after: 3}\n")
	res = f.Run(t, "plan", "stack.yaml")
	for _, want := range []string{
		"keyspace job idem-v2: in sync (ran ",
		"keyspace job later: waits for migration 00003_index.sql",
		"- delete keyspace job keep-v2: 40 keys match keep:* in db 0",
		"1 keyspace job(s).",
	} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, res.Stdout)
		}
	}
	res = f.Run(t, "plan", "--format", "json", "stack.yaml")
	if res.Code != 0 {
		t.Fatalf("plan json: %+v", res)
	}
	clitest.CheckPlanJSON(t, res.Stdout, 1)
	var p struct {
		Stacks []struct {
			Redis struct {
				KeyspaceJobs []struct{ State string } `json:"keyspaceJobs"`
			} `json:"redis"`
		} `json:"stacks"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &p); err != nil || len(p.Stacks[0].Redis.KeyspaceJobs) != 3 {
		t.Fatalf("keyspace jobs in JSON: %v %+v", err, p)
	}
	var states []string
	for _, j := range p.Stacks[0].Redis.KeyspaceJobs {
		states = append(states, j.State)
	}
	if got := strings.Join(states, ","); got != "done,pending,waiting" {
		t.Errorf("states %s", got)
	}
	if v := ajvtest.Validate(t, "schemas/plan.schema.json", []json.RawMessage{json.RawMessage(res.Stdout)})[0]; !v.Valid {
		t.Errorf("ajv: plan JSON invalid: %v", v.Errors)
	}

	// a saved plan still applies when the cache moved: counts are not part
	// of its fingerprint, the job deletes what matches when it runs
	if res = f.Run(t, "plan", "--out", "saved.json", "stack.yaml"); res.Code != 0 {
		t.Fatalf("plan --out: %+v", res)
	}
	for i := range 10 { // 42 of 92 keys match: still under riskyShare
		c.Set(ctx, fmt.Sprintf("misc:%d", i), "v", 0)
	}
	c.Set(ctx, "keep:new1", "v", 0)
	c.Set(ctx, "keep:new2", "v", 0)
	res = f.Run(t, "apply", "saved.json")
	if res.Code != 0 || !strings.Contains(res.Stdout, "done    keyspace job keep-v2: 42 key(s) deleted") {
		t.Errorf("apply saved plan: %+v", res)
	}
}
