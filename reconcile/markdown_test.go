package reconcile

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
)

var update = flag.Bool("update", false, "rewrite golden files")

// everyKind is a plan holding every kind of change, a warning and an error.
func everyKind() *Plan {
	return &Plan{FormatVersion: FormatVersion, Stacks: []StackPlan{
		{
			Stack: "amanat-prod", File: "envs/prod/stack.yaml",
			Postgres: &PostgresStatus{Server: "db:5432/amanat", VersionBefore: 19, VersionAfter: 21, Target: "latest"},
			Redis:    &RedisStatus{Server: "cache:6379", Version: "8.0.2", Persisted: false},
			Changes: []Change{
				{Stack: "amanat-prod", Kind: ResourceMigration, Resource: "postgres.migration.20", Name: "00020_add_index.sql", Action: ActionUp, Before: "pending", After: "applied", Version: 20},
				{Stack: "amanat-prod", Kind: ResourceMigration, Resource: "postgres.migration.21", Name: "00021_drop_legacy.sql", Action: ActionUp, Before: "pending", After: "applied", Version: 21,
					Risk: "DROP TABLE legacy_users destroys its data", Deferred: "until 2026-11-29T02:00:00Z (next maintenance window)"},
				{Stack: "amanat-prod", Kind: ResourceRedisConfig, Resource: "redis.config.maxmemory", Name: "maxmemory", Action: ActionUpdate, Before: "0", After: "256mb"},
				{Stack: "amanat-prod", Kind: ResourceRedisConfig, Resource: "redis.config.save", Name: "save", Action: ActionUpdate, Before: "", After: "3600 1 300 100"},
				{Stack: "amanat-prod", Kind: ResourceBackup, Resource: "backup.pg", Name: "pg", Action: ActionBackup, Before: "last none", After: "new postgres backup in /var/backups/pg"},
				{Stack: "amanat-prod", Kind: ResourcePrune, Resource: "backup.prune.pg.x", Name: "/var/backups/pg/amanat-prod-pg-20261101T030000Z.dump", Action: ActionDelete, Before: "backup of 2026-11-01T03:00:00Z", After: "deleted (retention)"},
			},
			Warnings: []string{"redis cache:6379 runs without a config file: settings | lost on restart"},
		},
		{
			Stack: "amanat-dev", File: "envs/dev/stack.yaml",
			Postgres: &PostgresStatus{Server: "dev:5432/amanat_dev", VersionBefore: 21, VersionAfter: 19, Target: "19"},
			Changes: []Change{
				{Stack: "amanat-dev", Kind: ResourceMigration, Resource: "postgres.migration.21", Name: "00021_drop_legacy.sql", Action: ActionDown, Before: "applied", After: "rolled back", Version: 21, Risk: "down migration"},
				{Stack: "amanat-dev", Kind: ResourceMigration, Resource: "postgres.migration.20", Name: "00020_add_index.sql", Action: ActionDown, Before: "applied", After: "rolled back", Version: 20, Risk: "down migration"},
			},
		},
		{Stack: "amanat-staging", File: "envs/staging/stack.yaml", Changes: []Change{}, Errors: Errors{errors.New("postgres staging:5432/amanat: cannot connect: connection refused")}},
		{Stack: "cache-only", File: "envs/cache.yaml", Redis: &RedisStatus{Server: "c:6379", Version: "8.0.2", Persisted: true}, Changes: []Change{}},
	}}
}

func TestMarkdownGolden(t *testing.T) {
	var b bytes.Buffer
	everyKind().WriteMarkdown(&b)
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
	everyKind().WriteMarkdown(&md)
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
	p.WriteText(&txt, Style{})
	p.WriteMarkdown(&md)
	line := p.Summarize().Line()
	if !strings.Contains(txt.String(), line) || !strings.Contains(md.String(), line) {
		t.Errorf("summary %q missing from one rendering:\n%s\n%s", line, txt.String(), md.String())
	}
	if !strings.Contains(txt.String(), "RISKY: DROP TABLE legacy_users destroys its data (deferred until 2026-11-29T02:00:00Z") {
		t.Errorf("text rendering does not flag the risky change:\n%s", txt.String())
	}
}
