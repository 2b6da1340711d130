package main_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/ajvtest"
	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
)

// TestPlanPostgresServerState runs validate, plan (text, json, markdown)
// and apply through the binary on a stack with extensions and settings:
// the JSON validates against schemas/plan.schema.json, and a risky drop is
// refused by apply without --allow-risky.
func TestPlanPostgresServerState(t *testing.T) {
	// a cluster of its own: apply changes a server setting (ALTER SYSTEM),
	// which must not reach the tests sharing testsrv's cluster
	pg := testsrv.NewPostgres(t, testsrv.PostgresOptions{})
	pgURL := pg.URL("postgres")
	if _, err := testsrv.OpenDB(t, pgURL).Exec("CREATE EXTENSION pg_trgm"); err != nil {
		t.Fatal(err)
	}
	f := clitest.NewFixture(t, nil)
	f.Env["PG_URL"] = pgURL
	f.Write(t, "stack.yaml", clitest.StackYAML("srv", `  postgres:
    url: ${PG_URL}
    extensions:
      - {name: pg_trgm, state: absent}
      - {name: pg_stat_statements}
    settings:
      statement_timeout: 30s
`))
	if res := f.Run(t, "validate", "stack.yaml"); res.Code != 0 {
		t.Fatalf("validate: %+v", res)
	}
	res := f.Run(t, "plan", "--format", "json", "stack.yaml")
	if res.Code != 0 {
		t.Fatalf("plan: %+v", res)
	}
	var p struct {
		Stacks []struct {
			Changes  []struct{ Kind, Action, Name, Risk string } `json:"changes"`
			Warnings []string                                    `json:"warnings"`
		} `json:"stacks"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &p); err != nil || len(p.Stacks) != 1 {
		t.Fatalf("plan JSON: %v\n%s", err, res.Stdout)
	}
	seen := map[string]bool{}
	for _, c := range p.Stacks[0].Changes {
		seen[c.Kind+" "+c.Action+" "+c.Name+" risky="+map[bool]string{true: "yes", false: "no"}[c.Risk != ""]] = true
	}
	for _, want := range []string{"postgres.extension drop pg_trgm risky=yes", "postgres.extension create pg_stat_statements risky=no", "postgres.setting update statement_timeout risky=no"} {
		if !seen[want] {
			t.Errorf("plan lacks %q: %v", want, seen)
		}
	}
	if w := strings.Join(p.Stacks[0].Warnings, "\n"); !strings.Contains(w, "needs pg_stat_statements in shared_preload_libraries") {
		t.Errorf("no preload warning: %q", w)
	}
	if v := ajvtest.Validate(t, "schemas/plan.schema.json", []json.RawMessage{json.RawMessage(res.Stdout)})[0]; !v.Valid {
		t.Errorf("plan JSON does not match schemas/plan.schema.json:\n%s\n%s", strings.Join(v.Errors, "\n"), res.Stdout)
	}
	text := f.Run(t, "plan", "stack.yaml")
	for _, want := range []string{"- extension pg_trgm", "RISKY: DROP EXTENSION", "~ setting   statement_timeout", "+ extension pg_stat_statements"} {
		if !strings.Contains(text.Stdout, want) {
			t.Errorf("text plan lacks %q:\n%s", want, text.Stdout)
		}
	}
	if md := f.Run(t, "plan", "--format", "markdown", "stack.yaml"); !strings.Contains(md.Stdout, "`postgres.extension.pg_trgm`") {
		t.Errorf("markdown plan:\n%s", md.Stdout)
	}
	// apply: the risky drop is refused (exit 1), the rest is applied
	ap := f.Run(t, "apply", "--auto-approve", "stack.yaml")
	if ap.Code != 1 || !strings.Contains(ap.Stdout, "refused") || !strings.Contains(ap.Stdout, "done    create extension pg_stat_statements") {
		t.Fatalf("apply: %+v", ap)
	}
	if got := showSetting(t, pgURL, "statement_timeout"); got != "30000" {
		t.Errorf("statement_timeout after apply: %q, want 30000 (ms)", got)
	}
	var n int
	if err := testsrv.OpenDB(t, pgURL).QueryRow("SELECT count(*) FROM pg_extension WHERE extname IN ('pg_trgm', 'pg_stat_statements')").Scan(&n); err != nil || n != 2 {
		t.Fatalf("extensions after apply: %d, %v; want pg_trgm kept and pg_stat_statements created", n, err)
	}
}

func showSetting(t *testing.T, url, name string) string {
	t.Helper()
	var v string
	if err := testsrv.OpenDB(t, url).QueryRow("SELECT setting FROM pg_settings WHERE name = $1", name).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}
