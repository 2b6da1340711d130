package reconcile_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
)

// marketplace reads the fixture migration set of testdata/marketplace: 32
// goose files that create, alter, rename and drop across migrations.
func marketplace(t *testing.T) map[string]string {
	t.Helper()
	entries, err := os.ReadDir("testdata/marketplace")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("testdata/marketplace", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	if len(out) < 30 {
		t.Fatalf("testdata/marketplace holds %d migrations, want at least 30", len(out))
	}
	return out
}

// A fresh database migrates from zero without --allow-risky: every drop in
// the set hits a table that is absent, or that an earlier pending migration
// creates. Once the tables hold data, the same kinds of statements are risky.
func TestRiskJudgedAgainstTheLiveDatabase(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	set := marketplace(t)
	f := clitest.NewFixture(t, set)
	f.Env["PG_URL"] = pgURL
	yaml := clitest.StackYAML("market", clitest.PGMigrations)
	stacks := load(t, f, yaml)

	p := plan(t, stacks)
	if got := len(p.Stacks[0].Changes); got != len(set) {
		t.Fatalf("%d changes planned from zero, want %d:\n%s", got, len(set), planText(p))
	}
	for _, c := range p.Stacks[0].Changes {
		if c.Risk != "" {
			t.Errorf("%s on a fresh database is marked risky: %s", c.Name, c.Risk)
		}
	}
	mustApply(t, stacks, p) // Options{}: no --allow-risky, no window
	if v := clitest.DBVersion(t, pgURL); v != int64(len(set)) {
		t.Fatalf("version %d after applying from zero, want %d", v, len(set))
	}

	// Users sign up; user_passkeys and reviews stay empty.
	db := testsrv.OpenDB(t, pgURL)
	if _, err := db.Exec("INSERT INTO users (email, legacy_object_id) VALUES ('a@example.com', '5f1a'), ('b@example.com', '5f1b')"); err != nil {
		t.Fatal(err)
	}
	next := map[string]string{
		"00033_drop_legacy_object_id.sql": clitest.Mig("ALTER TABLE users DROP COLUMN legacy_object_id;", "ALTER TABLE users ADD COLUMN legacy_object_id text;"),
		"00034_drop_missing.sql":          clitest.Mig("DROP TABLE IF EXISTS never_created;\nALTER TABLE users DROP COLUMN IF EXISTS never_added;", "SELECT 1;"),
		"00035_wishlists.sql":             clitest.Mig("CREATE TABLE wishlists (id bigserial PRIMARY KEY, user_id uuid REFERENCES users (id), note text);", "DROP TABLE wishlists;"),
		"00036_wishlists_note.sql":        clitest.Mig("ALTER TABLE wishlists DROP COLUMN note;\nALTER TABLE wishlists ALTER COLUMN user_id TYPE uuid;", "ALTER TABLE wishlists ADD COLUMN note text;"),
		"00037_passkeys_empty.sql":        clitest.Mig("ALTER TABLE user_passkeys DROP COLUMN sign_count;\nTRUNCATE reviews;", "ALTER TABLE user_passkeys ADD COLUMN sign_count bigint;"),
		"00038_rename_users.sql":          clitest.Mig("ALTER TABLE users RENAME TO accounts;", "ALTER TABLE accounts RENAME TO users;"),
		"00039_drop_renamed.sql":          clitest.Mig("ALTER TABLE accounts DROP COLUMN display_name;", "ALTER TABLE accounts ADD COLUMN display_name text;"),
		"00040_truncate_users.sql":        clitest.Mig("TRUNCATE accounts CASCADE;", "SELECT 1;"),
	}
	for name, body := range next {
		f.Write(t, "migrations/"+name, body)
	}
	stacks = load(t, f, yaml)
	p = plan(t, stacks)
	tests := []struct {
		resource, risk string // risk: a substring of the reason; "" for not risky
	}{
		{"postgres.migration.33", "DROP COLUMN legacy_object_id"}, // a live table with rows
		{"postgres.migration.34", ""},                             // IF EXISTS of absent objects
		{"postgres.migration.35", ""},
		{"postgres.migration.36", ""},                          // created by migration 35 of this plan
		{"postgres.migration.37", ""},                          // live but empty tables
		{"postgres.migration.38", ""},                          // a rename keeps the data
		{"postgres.migration.39", "accounts DROP COLUMN"},      // users, renamed by 38: still holds rows
		{"postgres.migration.40", "TRUNCATE accounts deletes"}, // likewise
	}
	for _, tt := range tests {
		c, ok := riskOf(p, tt.resource)
		switch {
		case !ok:
			t.Errorf("%s not planned:\n%s", tt.resource, planText(p))
		case tt.risk == "" && c.Risk != "":
			t.Errorf("%s (%s) marked risky: %s", tt.resource, c.Name, c.Risk)
		case tt.risk != "" && !strings.Contains(c.Risk, tt.risk):
			t.Errorf("%s (%s): risk %q, want one mentioning %q", tt.resource, c.Name, c.Risk, tt.risk)
		}
	}

	res := reconcile.Apply(context.Background(), stacks, p, reconcile.Options{})
	if !res.Failed() {
		t.Fatal("apply without --allow-risky of a migration dropping a populated column did not fail")
	}
	for _, ch := range res.Stacks[0].Changes {
		if ch.Resource == "postgres.migration.33" && ch.Status != reconcile.StatusRefused {
			t.Errorf("migration 33: %s, want refused", ch.Status)
		}
	}
	var n int
	if err := db.QueryRow("SELECT count(legacy_object_id) FROM users").Scan(&n); err != nil || n != 2 {
		t.Errorf("the populated column was touched: count %d, err %v", n, err)
	}
	if v := clitest.DBVersion(t, pgURL); v != int64(len(set)) {
		t.Errorf("version %d after a refused apply, want %d", v, len(set))
	}
}

// Emptiness is observed when planning: a saved plan that dropped an empty
// table is refused once the table holds rows.
func TestSavedPlanRiskMoved(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	f := clitest.NewFixture(t, map[string]string{"00001_drafts.sql": clitest.Mig("CREATE TABLE drafts (id int);", "DROP TABLE drafts;")})
	f.Env["PG_URL"] = pgURL
	yaml := clitest.StackYAML("s", clitest.PGMigrations)
	stacks := load(t, f, yaml)
	mustApply(t, stacks, plan(t, stacks))
	f.Write(t, "migrations/00002_drop.sql", clitest.Mig("DROP TABLE drafts;", "CREATE TABLE drafts (id int);"))
	stacks = load(t, f, yaml)
	saved := reconcile.Saved{Plan: plan(t, stacks)}
	if c, _ := riskOf(saved.Plan, "postgres.migration.2"); c.Risk != "" {
		t.Fatalf("dropping an empty table is risky: %s", c.Risk)
	}
	if moved := saved.Moved(plan(t, stacks), reconcile.SpecFingerprint{}); len(moved) != 0 {
		t.Fatalf("nothing changed, yet moved: %v", moved)
	}
	if _, err := testsrv.OpenDB(t, pgURL).Exec("INSERT INTO drafts VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	moved := saved.Moved(plan(t, stacks), reconcile.SpecFingerprint{})
	want := "stack s: postgres.migration.2 was planned as not risky, now risky (DROP TABLE drafts destroys its data)"
	if len(moved) != 1 || moved[0] != want {
		t.Errorf("moved %q, want [%q]", moved, want)
	}
}
