package main_test

import (
	"context"
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

// TestPlanDrift: plan reports schema drift for a stack with
// spec.postgres.drift, in text, JSON (valid against plan.schema.json) and
// markdown. With read-only credentials (no CREATEDB) and nothing cached it
// says "expected schema unavailable" and still plans; once `dbops drift`
// has cached the expected schema with the owner's credentials, the
// read-only plan reports the drift from the cache. --no-drift skips it.
func TestPlanDrift(t *testing.T) {
	pg := testsrv.SharedPostgres(t)
	pgURL := testsrv.PostgresDB(t)
	f := clitest.NewFixture(t, map[string]string{
		"00001_t.sql": clitest.Mig("CREATE TABLE t (id int PRIMARY KEY, email text);", "DROP TABLE t;"),
	})
	f.Env["PG_URL"] = pgURL
	f.Write(t, "stack.yaml", clitest.StackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: ./migrations}\n    drift: {policy: block}\n"))
	if res := f.Run(t, "apply", "--auto-approve", "stack.yaml"); res.Code != 0 {
		t.Fatalf("apply: %+v", res)
	}
	if _, err := testsrv.OpenDB(t, pgURL).Exec("CREATE INDEX t_email_idx ON t (email)"); err != nil {
		t.Fatal(err)
	}
	f.Write(t, "migrations/00002_u.sql", clitest.Mig("CREATE TABLE u (id int);", "DROP TABLE u;"))
	db := strings.TrimPrefix(mustParse(t, pgURL).Path, "/")
	role := "ro_" + db // roles are per server; databases are unique per test
	if err := pg.Exec(context.Background(), db, strings.NewReplacer("%r", role, "%d", db).Replace(`CREATE ROLE %r LOGIN PASSWORD 'roPw-3317' NOCREATEDB;
GRANT CONNECT ON DATABASE %d TO %r; GRANT USAGE ON SCHEMA public TO %r;
GRANT SELECT ON public.goose_db_version, public.goose_db_version_dbops_checksums TO %r;`)); err != nil {
		t.Fatal(err)
	}
	owner := pgURL
	f.Env["PG_URL"] = pg.URLAs(role, "roPw-3317", db)

	type planJSON struct {
		Stacks []struct {
			Warnings []string
			Postgres struct {
				Drift *struct {
					Expected    string
					Unavailable bool
					Error       string
					Items       []struct{ Kind, Name, Change string }
				}
			}
		}
	}
	plan := func(args ...string) (clitest.Result, planJSON) {
		t.Helper()
		res := f.Run(t, append([]string{"plan", "--format", "json"}, append(args, "stack.yaml")...)...)
		var p planJSON
		if err := json.Unmarshal([]byte(res.Stdout), &p); err != nil || len(p.Stacks) != 1 {
			t.Fatalf("plan JSON: %v %+v", err, res)
		}
		return res, p
	}
	var docs []json.RawMessage

	// Nothing cached, no CREATEDB: said plainly, and the plan stands.
	res, p := plan()
	d := p.Stacks[0].Postgres.Drift
	if res.Code != 0 || d == nil || !d.Unavailable || !strings.Contains(d.Error, "expected schema unavailable") || !strings.Contains(d.Error, "CREATEDB") {
		t.Fatalf("read-only plan without cache: exit %d, drift %+v\n%s", res.Code, d, res.Stderr)
	}
	docs = append(docs, json.RawMessage(res.Stdout))
	if res := f.Run(t, "plan", "stack.yaml"); res.Code != 0 || !strings.Contains(res.Stdout, "schema drift: not checked: postgres") ||
		!strings.Contains(res.Stdout, "expected schema unavailable") {
		t.Errorf("text plan without cache: %+v", res)
	}

	// The owner's check caches the expected schema; read-only plans use it.
	f.Env["PG_URL"] = owner
	if res := f.Run(t, "drift", "shop", "stack.yaml"); res.Code != 2 {
		t.Fatalf("drift as owner: %+v", res)
	}
	f.Env["PG_URL"] = pg.URLAs(role, "roPw-3317", db)
	res, p = plan()
	d = p.Stacks[0].Postgres.Drift
	if res.Code != 0 || d == nil || d.Error != "" || d.Expected != "cache" || len(d.Items) != 1 || d.Items[0].Name != "t_email_idx" || d.Items[0].Change != "extra" {
		t.Fatalf("read-only plan with cache: exit %d, drift %+v\n%s", res.Code, d, res.Stderr)
	}
	if w := strings.Join(p.Stacks[0].Warnings, "\n"); !strings.Contains(w, "apply will refuse the migrations") {
		t.Errorf("policy block with a pending migration: warnings %q lack the refusal", w)
	}
	docs = append(docs, json.RawMessage(res.Stdout))
	clitest.CheckPlanJSON(t, res.Stdout, 1)

	tests := []struct {
		format string
		want   []string
	}{
		{"text", []string{"schema drift: 1 object(s) differ from the migrations (level 1, ", "expected schema from the cache, policy block",
			"! index t_email_idx exists live, not in migrations", "1 stack(s) with schema drift"}},
		{"markdown", []string{"**Schema drift**: 1 object(s) differ", "| index `t_email_idx` | extra |", "`dbops drift shop PATH --sql`"}},
	}
	for _, tc := range tests {
		res := f.Run(t, "plan", "--format", tc.format, "stack.yaml")
		for _, w := range tc.want {
			if !strings.Contains(res.Stdout, w) {
				t.Errorf("%s plan lacks %q:\n%s", tc.format, w, res.Stdout)
			}
		}
	}
	if res, p := plan("--no-drift"); res.Code != 0 || p.Stacks[0].Postgres.Drift != nil {
		t.Errorf("plan --no-drift: exit %d, drift %+v", res.Code, p.Stacks[0].Postgres.Drift)
	}
	for i, v := range ajvtest.Validate(t, "schemas/plan.schema.json", docs) {
		if !v.Valid {
			t.Errorf("plan JSON does not match schemas/plan.schema.json:\n%s\n%s", strings.Join(v.Errors, "\n"), docs[i])
		}
	}
}
