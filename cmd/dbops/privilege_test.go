package main_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
)

// The exact grants README documents for CI credentials.
const (
	readOnlyGrants = `CREATE ROLE dbops_ci LOGIN PASSWORD 'ciPw-5521';
GRANT CONNECT ON DATABASE %s TO dbops_ci;
GRANT USAGE ON SCHEMA public TO dbops_ci;
GRANT SELECT ON public.goose_db_version TO dbops_ci;
GRANT SELECT ON public.goose_db_version_dbops_checksums TO dbops_ci;`
	redisACL = "ACL SETUSER dbops-ci on >ciRedisPw-7731 resetkeys resetchannels -@all +ping +info +config|get"
)

func TestPlanWithLeastPrivilege(t *testing.T) {
	pg := testsrv.SharedPostgres(t)
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{Password: "adminPw-1180"})
	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
	f.Write(t, "stack.yaml", clitest.CLIStack)
	// Apply two of three migrations as the owner, so there is something to plan.
	f.Write(t, "partial.yaml", strings.Replace(clitest.CLIStack, "migrations: {dir: ./migrations}", "migrations: {dir: ./migrations, target: 2}", 1))
	if res := f.Run(t, "apply", "--auto-approve", "partial.yaml"); res.Code != 0 {
		t.Fatalf("setup apply: %+v", res)
	}
	db := strings.TrimPrefix(mustParse(t, pgURL).Path, "/")
	if err := pg.Exec(context.Background(), db, strings.ReplaceAll(readOnlyGrants, "%s", db)); err != nil {
		t.Fatal(err)
	}
	c := r.Client(t)
	args := []any{}
	for _, a := range strings.Fields(redisACL) {
		args = append(args, a)
	}
	if err := c.Do(context.Background(), args...).Err(); err != nil {
		t.Fatal(err)
	}
	c.ConfigSet(context.Background(), "maxmemory", "1mb") // drift to plan

	f.Env["PG_URL"] = pg.URLAs("dbops_ci", "ciPw-5521", db)
	ru := mustParse(t, r.URL())
	ru.User = url.UserPassword("dbops-ci", "ciRedisPw-7731")
	f.Env["REDIS_URL"] = ru.String()

	res := f.Run(t, "plan", "--detailed-exitcode", "stack.yaml")
	if res.Code != 2 {
		t.Fatalf("plan with CI credentials: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	for _, w := range []string{"migration version 2 → 3", "+ up   00003_index.sql", "maxmemory  1048576 → 128mb",
		"checksums of applied migrations: 2 verified"} {
		if !strings.Contains(res.Stdout, w) {
			t.Errorf("plan lacks %q:\n%s", w, res.Stdout)
		}
	}
	// Without SELECT on the ledger (granted later, or not at all), plan
	// still reads goose's rows and says what it could not verify.
	if err := pg.Exec(context.Background(), db, "REVOKE SELECT ON public.goose_db_version_dbops_checksums FROM dbops_ci"); err != nil {
		t.Fatal(err)
	}
	proxy, through := testsrv.NewPGProxy(t, f.Env["PG_URL"])
	ciURL := f.Env["PG_URL"]
	f.Env["PG_URL"] = through
	res = f.Run(t, "plan", "--detailed-exitcode", "stack.yaml")
	f.Env["PG_URL"] = ciURL
	if res.Code != 2 {
		t.Fatalf("plan without SELECT on the ledger: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	for _, w := range []string{"migration version 2 → 3", "checksums of applied migrations not verified: no SELECT privilege on goose_db_version_dbops_checksums"} {
		if !strings.Contains(res.Stdout, w) {
			t.Errorf("plan without SELECT on the ledger lacks %q:\n%s", w, res.Stdout)
		}
	}
	// The refused read is not tried again: one statement reads the ledger.
	var reads []string
	for _, s := range proxy.Statements() {
		if strings.Contains(s, "goose_db_version_dbops_checksums") {
			reads = append(reads, s)
		}
	}
	if len(reads) != 1 {
		t.Errorf("plan without SELECT on the ledger read it %d times, want 1:\n%s", len(reads), strings.Join(reads, "\n"))
	}
	// The same credentials cannot apply: the server refuses writes.
	res = f.Run(t, "apply", "--auto-approve", "stack.yaml")
	if res.Code != 1 {
		t.Errorf("apply with read-only credentials: exit %d\n%s", res.Code, res.Stdout)
	}
	if !strings.Contains(res.Stdout, "NOPERM") || !strings.Contains(res.Stdout, "SQLSTATE 42501") {
		t.Errorf("apply errors do not show the servers' refusals:\n%s", res.Stdout)
	}
	if v := clitest.DBVersion(t, pgURL); v != 2 {
		t.Errorf("read-only credentials migrated to %d", v)
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
