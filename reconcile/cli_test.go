package reconcile_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/schemas"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// dbops builds the real binary once per test run.
func dbops(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dbops-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "dbops")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/dbops").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("building dbops: %v", buildErr)
	}
	return binPath
}

type cliResult struct {
	code           int
	stdout, stderr string
}

func (f *fixture) run(t *testing.T, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(dbops(t), args...)
	cmd.Dir = f.dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range f.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return cliResult{code, out.String(), errb.String()}
}

const cliStack = `apiVersion: dbops/v1
kind: Stack
metadata:
  name: shop
spec:
  postgres:
    url: ${PG_URL}
    migrations: {dir: ./migrations}
  redis:
    url: ${REDIS_URL}
    config:
      maxmemory: 128mb
      appendonly: yes
`

func TestCLI(t *testing.T) {
	pg := testsrv.SharedPostgres(t)
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{Password: "redisPw-4f9a2c"})
	f := newFixture(t, threeMigrations)
	f.env["PG_URL"], f.env["REDIS_URL"] = pgURL, r.URL()
	f.write(t, "stack.yaml", cliStack)
	secrets := []string{pg.Password, r.Password}
	var all strings.Builder
	run := func(args ...string) cliResult {
		res := f.run(t, args...)
		all.WriteString(res.stdout + res.stderr)
		return res
	}

	if res := run("validate", "stack.yaml"); res.code != 0 || !strings.Contains(res.stdout, "1 stack(s) in 1 file(s) are valid") {
		t.Fatalf("validate: %+v", res)
	}

	res := run("plan", "--detailed-exitcode", "--format", "json", ".")
	if res.code != 2 {
		t.Fatalf("plan --detailed-exitcode with changes: exit %d, want 2\n%s", res.code, res.stderr)
	}
	checkPlanJSON(t, res.stdout, 5)

	if res := run("plan", "stack.yaml"); res.code != 0 || !strings.Contains(res.stdout, "+ up   00001_users.sql") ||
		!strings.Contains(res.stdout, "maxmemory   0 → 128mb") || strings.Contains(res.stdout, "\x1b[") {
		t.Errorf("text plan (no colour off a terminal):\n%s", res.stdout)
	}

	if res := run("apply", "stack.yaml"); res.code != 1 || !strings.Contains(res.stderr, "refusing to apply without --auto-approve") {
		t.Errorf("apply without a terminal: %+v", res)
	}
	if v := dbVersion(t, pgURL); v != 0 {
		t.Fatalf("refused apply migrated to %d", v)
	}

	if res := run("apply", "--auto-approve", "stack.yaml"); res.code != 0 || !strings.Contains(res.stdout, "Apply: 5 done, 0 failed, 0 not applied.") {
		t.Fatalf("apply: %+v", res)
	}
	if res := run("plan", "--detailed-exitcode", "stack.yaml"); res.code != 0 || !strings.Contains(res.stdout, "No changes") {
		t.Errorf("plan after apply: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if res := run("apply", "--auto-approve", "stack.yaml"); res.code != 0 || strings.Contains(res.stdout, "done") {
		t.Errorf("re-apply is not a no-op: %+v", res)
	}

	// A wrong password: the error names the server, never a password.
	f.env["REDIS_URL"] = strings.Replace(r.URL(), r.Password, "wrongPw-77e1", 1)
	if res := run("plan", "stack.yaml"); res.code != 1 || !strings.Contains(res.stdout, "redis 127.0.0.1:") {
		t.Errorf("plan with a wrong password: %+v", res)
	}
	secrets = append(secrets, "wrongPw-77e1")
	f.env["REDIS_URL"] = r.URL()

	if res := run("validate", "nope.yaml"); res.code != 1 {
		t.Errorf("validate of a missing file: exit %d", res.code)
	}
	f.write(t, "bad/stack.yaml", strings.Replace(cliStack, "128mb", "128mbb", 1))
	if res := run("validate", "bad"); res.code != 1 || !strings.Contains(res.stderr, `bad/stack.yaml: stack "shop": spec.redis.config.maxmemory: "128mbb" is not a memory size`) {
		t.Errorf("validate of a bad spec: %+v", res)
	}
	if res := run("version"); res.code != 0 || !strings.HasPrefix(res.stdout, "dbops ") {
		t.Errorf("version: %+v", res)
	}

	for _, s := range secrets {
		if strings.Contains(all.String(), s) {
			t.Errorf("output shows the password %q", s)
		}
	}
}

// checkPlanJSON validates a JSON plan against schemas/plan.schema.json.
func checkPlanJSON(t *testing.T, out string, wantChanges int) {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		t.Fatalf("plan JSON: %v\n%s", err, out)
	}
	sdoc, _ := jsonschema.UnmarshalJSON(bytes.NewReader(schemas.Plan))
	c := jsonschema.NewCompiler()
	if err := c.AddResource("plan.schema.json", sdoc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("plan.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(doc); err != nil {
		t.Errorf("plan JSON does not match its schema: %v", err)
	}
	var p struct {
		Stacks []struct {
			Changes []map[string]any `json:"changes"`
		} `json:"stacks"`
	}
	json.Unmarshal([]byte(out), &p)
	if len(p.Stacks) != 1 || len(p.Stacks[0].Changes) != wantChanges {
		t.Fatalf("plan JSON has %+v, want %d changes", p, wantChanges)
	}
	for _, ch := range p.Stacks[0].Changes {
		for _, k := range []string{"stack", "resource", "action", "before", "after"} {
			if _, ok := ch[k]; !ok {
				t.Errorf("change %v lacks %q", ch, k)
			}
		}
	}
}
