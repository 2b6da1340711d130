package main_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/ajvtest"
	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
)

// TestDriftCLI runs `dbops drift` on a goose stack and on a drizzle stack
// (with spec.postgres.drift set), after apply: no drift (exit 0), then a
// hand-made index and a widened column are printed with review SQL
// (exit 2), and the JSON matches schemas/drift.schema.json.
func TestDriftCLI(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	f := clitest.NewFixture(t, map[string]string{
		"00001_t.sql": clitest.Mig("CREATE TABLE t (id int PRIMARY KEY, email text);", "DROP TABLE t;"),
	})
	f.Env["PG_URL"] = pgURL
	f.Write(t, "stack.yaml", clitest.StackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: ./migrations}\n    drift: {scratch: same-server, policy: report}\n"))
	drizzleURL := testsrv.PostgresDB(t)
	f.Env["DRIZZLE_URL"] = drizzleURL
	f.Write(t, "drizzle/0000_a.sql", "CREATE TABLE \"a\" (\"id\" int);")
	f.Write(t, "drizzle/0001_b.sql", "CREATE TABLE \"b\" (\"id\" int);\n--> statement-breakpoint\nCREATE INDEX \"b_id\" ON \"b\" (\"id\");")
	f.Write(t, "drizzle/meta/_journal.json", `{"version":"7","dialect":"postgresql","entries":[
{"idx":0,"version":"7","when":1700000000000,"tag":"0000_a","breakpoints":true},
{"idx":1,"version":"7","when":1700000001000,"tag":"0001_b","breakpoints":true}]}`)
	f.Write(t, "web.yaml", clitest.StackYAML("web", "  postgres:\n    url: ${DRIZZLE_URL}\n    migrations: {dir: ./drizzle}\n"))
	if res := f.Run(t, "apply", "--auto-approve", "stack.yaml", "web.yaml"); res.Code != 0 {
		t.Fatalf("apply: %+v", res)
	}
	for _, stack := range []string{"shop", "web"} {
		if res := f.Run(t, "drift", stack, "stack.yaml", "web.yaml"); res.Code != 0 || !strings.Contains(res.Stdout, "no drift") {
			t.Fatalf("drift %s after apply: %+v", stack, res)
		}
	}
	if _, err := testsrv.OpenDB(t, pgURL).Exec("CREATE INDEX t_email_idx ON t (email); ALTER TABLE t ALTER COLUMN email TYPE varchar(320)"); err != nil {
		t.Fatal(err)
	}
	if _, err := testsrv.OpenDB(t, drizzleURL).Exec("DROP INDEX b_id"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		stack string
		want  []string
	}{
		{"shop", []string{
			"column t.email: character varying(320) live, text expected",
			"index t_email_idx exists live, not in migrations",
			`DROP INDEX "t_email_idx";`,
		}},
		{"web", []string{
			"index b_id missing live",
			"CREATE INDEX b_id ON public.b USING btree (id);",
		}},
	}
	var docs []json.RawMessage
	for _, tc := range tests {
		res := f.Run(t, "drift", "--sql", tc.stack, "stack.yaml", "web.yaml")
		if res.Code != 2 {
			t.Fatalf("drift %s: exit %d, want 2: %+v", tc.stack, res.Code, res)
		}
		for _, w := range tc.want {
			if !strings.Contains(res.Stdout, w) {
				t.Errorf("drift %s: output lacks %q:\n%s", tc.stack, w, res.Stdout)
			}
		}
		res = f.Run(t, "drift", "--format", "json", "--sql", tc.stack, "stack.yaml", "web.yaml")
		var out struct {
			Items []struct{ Kind, Name, Change, SQL string }
		}
		if err := json.Unmarshal([]byte(res.Stdout), &out); err != nil || res.Code != 2 || len(out.Items) == 0 {
			t.Fatalf("drift --format json %s: %v %+v", tc.stack, err, res)
		}
		docs = append(docs, json.RawMessage(res.Stdout))
	}
	for i, v := range ajvtest.Validate(t, "schemas/drift.schema.json", docs) {
		if !v.Valid {
			t.Errorf("drift JSON does not match schemas/drift.schema.json:\n%s\n%s", strings.Join(v.Errors, "\n"), docs[i])
		}
	}
}

// TestDriftPolicyBlock: with policy block, apply refuses to migrate a
// drifted database and changes nothing; with report it migrates.
func TestDriftPolicyBlock(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	f := clitest.NewFixture(t, map[string]string{
		"00001_t.sql": clitest.Mig("CREATE TABLE t (id int PRIMARY KEY, email text);", "DROP TABLE t;"),
	})
	f.Env["PG_URL"] = pgURL
	stack := func(policy string) string {
		return clitest.StackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: ./migrations}\n    drift: {policy: "+policy+"}\n")
	}
	f.Write(t, "stack.yaml", stack("block"))
	if res := f.Run(t, "apply", "--auto-approve", "stack.yaml"); res.Code != 0 {
		t.Fatalf("apply on a clean database under block: %+v", res)
	}
	db := testsrv.OpenDB(t, pgURL)
	if _, err := db.Exec("CREATE INDEX t_email_idx ON t (email)"); err != nil {
		t.Fatal(err)
	}
	f.Write(t, "migrations/00002_u.sql", clitest.Mig("CREATE TABLE u (id int);", "DROP TABLE u;"))
	exists := func() bool {
		t.Helper()
		var ok bool
		if err := db.QueryRow("SELECT to_regclass('u') IS NOT NULL").Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	tests := []struct {
		policy  string
		code    int
		want    string
		applied bool
	}{
		{"block", 1, "index t_email_idx exists live, not in migrations", false},
		{"report", 0, "", true},
	}
	for _, tc := range tests {
		f.Write(t, "stack.yaml", stack(tc.policy))
		res := f.Run(t, "apply", "--auto-approve", "stack.yaml")
		if res.Code != tc.code || !strings.Contains(res.Stdout+res.Stderr, tc.want) {
			t.Errorf("apply under %s: exit %d, want %d with %q: %+v", tc.policy, res.Code, tc.code, tc.want, res)
		}
		if got := exists(); got != tc.applied {
			t.Errorf("apply under %s: migration applied = %v, want %v", tc.policy, got, tc.applied)
		}
	}
}
