package reconcile_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amanat/dbops/internal/ajvtest"
	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/spec"
)

// ownPostgres starts a cluster for this test alone: these tests change
// server settings and restart the server.
func ownPostgres(t *testing.T) *testsrv.Postgres {
	t.Helper()
	return testsrv.NewPostgres(t, testsrv.PostgresOptions{})
}

// pgStack is a stack of only spec.postgres, with body under it.
func pgStack(t *testing.T, url, body string) []spec.Stack {
	t.Helper()
	f := clitest.NewFixture(t, nil)
	f.Env["PG_URL"] = url
	return load(t, f, "apiVersion: dbops/v1\nkind: Stack\nmetadata: {name: pgs}\nspec:\n  postgres:\n    url: ${PG_URL}\n"+body)
}

func byKind(p *reconcile.Plan, k reconcile.Kind) map[string]reconcile.Change {
	out := map[string]reconcile.Change{}
	for _, c := range p.Stacks[0].Changes {
		if c.Kind == k {
			out[c.Name] = c
		}
	}
	return out
}

func planErrors(p *reconcile.Plan) string {
	var out []string
	for _, e := range p.Stacks[0].Errors {
		out = append(out, e.Error())
	}
	return strings.Join(out, "\n")
}

// validPlanJSON checks the plan's JSON against schemas/plan.schema.json with ajv.
func validPlanJSON(t *testing.T, plans ...*reconcile.Plan) {
	t.Helper()
	var docs []json.RawMessage
	for _, p := range plans {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, b)
	}
	for i, v := range ajvtest.Validate(t, "schemas/plan.schema.json", docs) {
		if !v.Valid {
			t.Errorf("plan %d does not validate against plan.schema.json: %v\n%s", i, v.Errors, docs[i])
		}
	}
}

// eventually plans until ok holds: pg_reload_conf() is asynchronous.
func eventually(t *testing.T, stacks []spec.Stack, o reconcile.Options, what string, ok func(*reconcile.Plan) bool) *reconcile.Plan {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p := reconcile.PlanStacks(context.Background(), stacks, o)
		if ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within 30s; last plan:\n%s", what, planText(p))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func showSetting(t *testing.T, pg *testsrv.Postgres, name string) string {
	t.Helper()
	db, err := sql.Open("pgx", pg.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRow("SELECT setting FROM pg_settings WHERE name = $1", name).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPostgresSettingsApplied(t *testing.T) {
	pg := ownPostgres(t)
	url := pg.URL("postgres")
	stacks := pgStack(t, url, `    settings:
      statement_timeout: 30s
      idle_in_transaction_session_timeout: 5min
      log_min_duration_statement: 500ms
      work_mem: 8MB
      jit: false
      log_min_messages: WARNING
      random_page_cost: 1.5
`)
	p := plan(t, stacks)
	if planErrors(p) != "" {
		t.Fatalf("plan errors: %s", planErrors(p))
	}
	got := byKind(p, reconcile.ResourceSetting)
	// log_min_messages is warning by default: WARNING is the same enum value
	want := []string{"idle_in_transaction_session_timeout", "jit", "log_min_duration_statement", "random_page_cost", "statement_timeout", "work_mem"}
	if names := slices.Sorted(mapKeys(got)); !slices.Equal(names, want) {
		t.Fatalf("setting changes %v, want %v\n%s", names, want, planText(p))
	}
	for n, c := range got {
		if c.Risk != "" || c.Action != reconcile.ActionUpdate {
			t.Errorf("%s: action %s risk %q, want a plain update", n, c.Action, c.Risk)
		}
	}
	if c := got["statement_timeout"]; c.Before != "0" || c.After != "30s" {
		t.Errorf("statement_timeout %q → %q, want 0 → 30s", c.Before, c.After)
	}
	validPlanJSON(t, p)
	mustApply(t, stacks, p)
	// apply returns once the reload is in force: the next plan sees it
	after := plan(t, stacks)
	if len(after.Stacks[0].Changes) != 0 || !strings.Contains(planText(after), "in sync") {
		t.Errorf("plan after apply:\n%s", planText(after))
	}
	// the server stores them in its own units: 30s as 30000 (ms), 8MB as 8192 (kB)
	for name, v := range map[string]string{"statement_timeout": "30000", "idle_in_transaction_session_timeout": "300000", "work_mem": "8192", "jit": "off", "random_page_cost": "1.5"} {
		if got := showSetting(t, pg, name); got != v {
			t.Errorf("pg_settings %s = %q, want %q", name, got, v)
		}
	}

	// the same values in other spellings compare equal, as the server parses them
	same := pgStack(t, url, `    settings:
      statement_timeout: "30000"
      idle_in_transaction_session_timeout: 300s
      log_min_duration_statement: 0.5s
      work_mem: 8192kB
      shared_buffers: 128MB
      jit: "no"
      log_min_messages: warning
      random_page_cost: "1.50"
`)
	if p := plan(t, same); len(p.Stacks[0].Changes) != 0 || planErrors(p) != "" {
		t.Fatalf("equal values in other units planned changes:\n%s", planText(p))
	}

	// a setting dropped from the spec is left alone; resetSettings resets it
	left := pgStack(t, url, "    settings: {statement_timeout: 30s}\n")
	if p := plan(t, left); len(p.Stacks[0].Changes) != 0 {
		t.Fatalf("dropping settings from the spec planned changes:\n%s", planText(p))
	}
	reset := pgStack(t, url, "    settings: {statement_timeout: 30s}\n    resetSettings: [work_mem, jit]\n")
	p = plan(t, reset)
	if c := byKind(p, reconcile.ResourceSetting); len(c) != 2 || c["work_mem"].Action != reconcile.ActionReset || c["jit"].Action != reconcile.ActionReset {
		t.Fatalf("reset plan:\n%s", planText(p))
	}
	validPlanJSON(t, p)
	mustApply(t, reset, p)
	if p := plan(t, reset); len(p.Stacks[0].Changes) != 0 || planErrors(p) != "" {
		t.Fatalf("after reset:\n%s", planText(p))
	}
	if got := showSetting(t, pg, "work_mem"); got != "4096" {
		t.Errorf("work_mem after reset = %q, want the default 4096", got)
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestPostgresSettingsRefused(t *testing.T) {
	url := testsrv.PostgresDB(t)
	cases := []struct {
		name, body, want string
	}{
		{"unknown name, the server's words", "no_such_setting: 1", `unrecognized configuration parameter "no_such_setting"`},
		{"enum value", "log_min_messages: loud", "is not one of the values the server accepts: debug5"},
		{"unit case", "work_mem: 8mb", `unit "mb" is not one PostgreSQL accepts here`},
		{"unit of time on memory", "work_mem: 8s", `unit "s" is not one PostgreSQL accepts here`},
		{"boolean", "jit: maybe", "is not a boolean"},
		{"internal", "block_size: 16384", "block_size is fixed when PostgreSQL is built"},
		{"command line", "fsync: on", "fsync is set on the server's command line"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := plan(t, pgStack(t, url, "    settings:\n      "+c.body+"\n"))
			errs := p.Stacks[0].Errors
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), c.want) || !strings.Contains(errs[0].Error(), "spec.postgres.settings") {
				t.Fatalf("errors %v, want one naming spec.postgres.settings and %q", errs, c.want)
			}
			if reconcile.ClassOf(errs[0]) != reconcile.ClassPermanent {
				t.Errorf("class %v, want permanent (only a new revision helps)", reconcile.ClassOf(errs[0]))
			}
			if len(p.Stacks[0].Changes) != 0 {
				t.Errorf("changes planned despite the error: %v", p.Stacks[0].Changes)
			}
		})
	}
}
