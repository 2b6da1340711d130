package render

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"

	"github.com/amanat/dbops/reconcile"
)

var update = flag.Bool("update", false, "rewrite golden files")

// everyKind is a plan holding every kind of change, a warning and an error.
func everyKind() *reconcile.Plan {
	return &reconcile.Plan{FormatVersion: reconcile.FormatVersion, Stacks: []reconcile.StackPlan{
		{
			Stack: "amanat-prod", File: "envs/prod/stack.yaml",
			Postgres: &reconcile.PostgresStatus{Server: "db:5432/amanat", VersionBefore: 19, VersionAfter: 21, Target: "latest"},
			Redis:    &reconcile.RedisStatus{Server: "cache:6379", Version: "8.0.2", Persisted: false},
			Changes: []reconcile.Change{
				{Stack: "amanat-prod", Kind: reconcile.ResourceMigration, Resource: "postgres.migration.20", Name: "00020_add_index.sql", Action: reconcile.ActionUp, Before: "pending", After: "applied", Version: 20},
				{Stack: "amanat-prod", Kind: reconcile.ResourceMigration, Resource: "postgres.migration.21", Name: "00021_drop_legacy.sql", Action: reconcile.ActionUp, Before: "pending", After: "applied", Version: 21,
					Risk: "DROP TABLE legacy_users destroys its data", Deferred: "until 2026-11-29T02:00:00Z (next maintenance window)"},
				{Stack: "amanat-prod", Kind: reconcile.ResourceRedisConfig, Resource: "redis.config.maxmemory", Name: "maxmemory", Action: reconcile.ActionUpdate, Before: "0", After: "256mb"},
				{Stack: "amanat-prod", Kind: reconcile.ResourceRedisConfig, Resource: "redis.config.save", Name: "save", Action: reconcile.ActionUpdate, Before: "", After: "3600 1 300 100"},
				{Stack: "amanat-prod", Kind: reconcile.ResourceBackup, Resource: "backup.pg", Name: "pg", Action: reconcile.ActionBackup, Before: "last none", After: "new postgres backup in /var/backups/pg"},
				{Stack: "amanat-prod", Kind: reconcile.ResourcePrune, Resource: "backup.prune.pg.x", Name: "/var/backups/pg/amanat-prod-pg-20261101T030000Z.dump", Action: reconcile.ActionDelete, Before: "backup of 2026-11-01T03:00:00Z", After: "deleted (retention)"},
			},
			Warnings: []string{"redis cache:6379 runs without a config file: settings | lost on restart"},
		},
		{
			Stack: "amanat-dev", File: "envs/dev/stack.yaml",
			Postgres: &reconcile.PostgresStatus{Server: "dev:5432/amanat_dev", VersionBefore: 21, VersionAfter: 19, Target: "19"},
			Changes: []reconcile.Change{
				{Stack: "amanat-dev", Kind: reconcile.ResourceMigration, Resource: "postgres.migration.21", Name: "00021_drop_legacy.sql", Action: reconcile.ActionDown, Before: "applied", After: "rolled back", Version: 21, Risk: "down migration"},
				{Stack: "amanat-dev", Kind: reconcile.ResourceMigration, Resource: "postgres.migration.20", Name: "00020_add_index.sql", Action: reconcile.ActionDown, Before: "applied", After: "rolled back", Version: 20, Risk: "down migration"},
			},
		},
		{Stack: "amanat-staging", File: "envs/staging/stack.yaml", Changes: []reconcile.Change{}, Errors: reconcile.Errors{errors.New("postgres staging:5432/amanat: cannot connect: connection refused")}},
		{Stack: "cache-only", File: "envs/cache.yaml", Redis: &reconcile.RedisStatus{Server: "c:6379", Version: "8.0.2", Persisted: true}, Changes: []reconcile.Change{}},
	}}
}

func TestMarkdownGolden(t *testing.T) {
	var b bytes.Buffer
	Markdown(&b, everyKind())
	golden := "testdata/plan.md"
	if *update {
		os.WriteFile(golden, b.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("markdown differs from %s (run go test -run TestMarkdownGolden -update):\n%s", golden, b.String())
	}
}

func TestMarkdownRendersTables(t *testing.T) {
	var md, html bytes.Buffer
	Markdown(&md, everyKind())
	if err := goldmark.New(goldmark.WithExtensions(extension.GFM)).Convert(md.Bytes(), &html); err != nil {
		t.Fatal(err)
	}
	out := html.String()
	if n := strings.Count(out, "<table>"); n != 2 {
		t.Errorf("%d tables, want 2 (one per stack with changes):\n%s", n, out)
	}
	// 8 changes + 2 header rows.
	if n := strings.Count(out, "<tr>"); n != 10 {
		t.Errorf("%d table rows, want 10:\n%s", n, out)
	}
	if !strings.Contains(out, "settings | lost") {
		t.Errorf("an escaped pipe outside a table was mangled")
	}
	first := strings.SplitN(md.String(), "\n", 2)[0]
	if !strings.Contains(first, "8 change(s) in 4 stack(s): 4 migration(s), 2 Redis setting(s), 2 backup change(s). 3 risky, 1 deferred to a maintenance window. 1 stack(s) could not be planned.") {
		t.Errorf("summary line: %s", first)
	}
}

func TestTextAndMarkdownShareTheSummary(t *testing.T) {
	var txt, md bytes.Buffer
	p := everyKind()
	PlanText(&txt, p, Style{})
	Markdown(&md, p)
	line := Summarize(p).Line()
	if !strings.Contains(txt.String(), line) || !strings.Contains(md.String(), line) {
		t.Errorf("summary %q missing from one rendering:\n%s\n%s", line, txt.String(), md.String())
	}
	if !strings.Contains(txt.String(), "RISKY: DROP TABLE legacy_users destroys its data (deferred until 2026-11-29T02:00:00Z") {
		t.Errorf("text rendering does not flag the risky change:\n%s", txt.String())
	}
}

func TestSummaryLineWithoutChanges(t *testing.T) {
	cases := []struct {
		sum  Summary
		want string
	}{
		{Summary{Stacks: 2}, "No changes: 2 stack(s) in sync."},
		{Summary{Stacks: 1, Failed: 1}, "1 stack(s) could not be planned (errors above); nothing else to do."},
		{Summary{Stacks: 3, Failed: 1}, "1 stack(s) could not be planned (errors above); the other 2 are in sync."},
	}
	for _, tc := range cases {
		if got := tc.sum.Line(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.sum, got, tc.want)
		}
	}
}
