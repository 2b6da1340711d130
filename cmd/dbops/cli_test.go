package main_test

import (
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
)

func TestCLI(t *testing.T) {
	pg := testsrv.SharedPostgres(t)
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{Password: "redisPw-4f9a2c"})
	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
	f.Write(t, "stack.yaml", clitest.CLIStack)
	secrets := []string{pg.Password, r.Password}
	var all strings.Builder
	run := func(args ...string) clitest.Result {
		res := f.Run(t, args...)
		all.WriteString(res.Stdout + res.Stderr)
		return res
	}

	if res := run("validate", "stack.yaml"); res.Code != 0 || !strings.Contains(res.Stdout, "1 stack(s) in 1 file(s) are valid") {
		t.Fatalf("validate: %+v", res)
	}

	res := run("plan", "--detailed-exitcode", "--format", "json", ".")
	if res.Code != 2 {
		t.Fatalf("plan --detailed-exitcode with changes: exit %d, want 2\n%s", res.Code, res.Stderr)
	}
	clitest.CheckPlanJSON(t, res.Stdout, 5)

	if res := run("plan", "stack.yaml"); res.Code != 0 || !strings.Contains(res.Stdout, "+ up   00001_users.sql") ||
		!strings.Contains(res.Stdout, "maxmemory   0 → 128mb") || strings.Contains(res.Stdout, "\x1b[") {
		t.Errorf("text plan (no colour off a terminal):\n%s", res.Stdout)
	}

	if res := run("apply", "stack.yaml"); res.Code != 1 || !strings.Contains(res.Stderr, "refusing to apply without --auto-approve") {
		t.Errorf("apply without a terminal: %+v", res)
	}
	if v := clitest.DBVersion(t, pgURL); v != 0 {
		t.Fatalf("refused apply migrated to %d", v)
	}

	if res := run("apply", "--auto-approve", "stack.yaml"); res.Code != 0 || !strings.Contains(res.Stdout, "Apply: 5 done, 0 failed, 0 not applied.") {
		t.Fatalf("apply: %+v", res)
	}
	if res := run("plan", "--detailed-exitcode", "stack.yaml"); res.Code != 0 || !strings.Contains(res.Stdout, "No changes") {
		t.Errorf("plan after apply: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	if res := run("apply", "--auto-approve", "stack.yaml"); res.Code != 0 || strings.Contains(res.Stdout, "done") {
		t.Errorf("re-apply is not a no-op: %+v", res)
	}

	// A wrong password: the error names the server, never a password.
	f.Env["REDIS_URL"] = strings.Replace(r.URL(), r.Password, "wrongPw-77e1", 1)
	if res := run("plan", "stack.yaml"); res.Code != 1 || !strings.Contains(res.Stdout, "redis 127.0.0.1:") {
		t.Errorf("plan with a wrong password: %+v", res)
	}
	secrets = append(secrets, "wrongPw-77e1")
	f.Env["REDIS_URL"] = r.URL()

	if res := run("validate", "nope.yaml"); res.Code != 1 {
		t.Errorf("validate of a missing file: exit %d", res.Code)
	}
	f.Write(t, "bad/stack.yaml", strings.Replace(clitest.CLIStack, "128mb", "128mbb", 1))
	if res := run("validate", "bad"); res.Code != 1 || !strings.Contains(res.Stderr, `bad/stack.yaml: stack "shop": spec.redis.config.maxmemory: "128mbb" is not a memory size`) {
		t.Errorf("validate of a bad spec: %+v", res)
	}
	if res := run("version"); res.Code != 0 || !strings.HasPrefix(res.Stdout, "dbops ") {
		t.Errorf("version: %+v", res)
	}

	for _, s := range secrets {
		if strings.Contains(all.String(), s) {
			t.Errorf("output shows the password %q", s)
		}
	}
}
