package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/ajvtest"
	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
)

// offlineStack is a valid stack whose servers are never contacted.
var offlineStack = clitest.StackYAML("shop", "  postgres:\n    url: postgres://app@127.0.0.1:1/app\n    migrations: {dir: ./migrations}\n")

func TestVersion(t *testing.T) {
	f := clitest.NewFixture(t, nil)
	res := f.Run(t, "--version")
	if res.Code != 0 || !strings.HasPrefix(res.Stdout, "dbops ") || !strings.Contains(res.Stdout, runtime.Version()) {
		t.Errorf("--version: exit %d %q", res.Code, res.Stdout)
	}
	if text := f.Run(t, "version"); text.Stdout != res.Stdout {
		t.Errorf("version says %q, --version %q", text.Stdout, res.Stdout)
	}
	res = f.Run(t, "version", "--format", "json")
	var v struct {
		Version, Commit, GoVersion, Platform string
		Features                             map[string]bool
	}
	if err := json.Unmarshal([]byte(res.Stdout), &v); err != nil || res.Code != 0 {
		t.Fatalf("version --format json: exit %d, %v\n%s", res.Code, err, res.Stdout)
	}
	// clitest builds with cgo as the tests are built: the parser is in.
	cgo, _ := exec.Command("go", "env", "CGO_ENABLED").Output()
	want := strings.TrimSpace(string(cgo)) == "1"
	if v.GoVersion != runtime.Version() || v.Platform != runtime.GOOS+"/"+runtime.GOARCH || v.Version == "" || v.Commit == "" {
		t.Errorf("version JSON %+v", v)
	}
	if parser, ok := v.Features["sqlParser"]; !ok || parser != want {
		t.Errorf("features %v, want sqlParser %v", v.Features, want)
	}
	if v := ajvtest.Validate(t, "schemas/version.schema.json", []json.RawMessage{json.RawMessage(res.Stdout)})[0]; !v.Valid {
		t.Errorf("version JSON does not match schemas/version.schema.json: %v\n%s", v.Errors, res.Stdout)
	}
}

// Every command refuses an unknown subcommand or --format value with exit 1.
func TestUnknownSubcommandsAndFormats(t *testing.T) {
	f := clitest.NewFixture(t, map[string]string{"00001_a.sql": clitest.Mig("SELECT 1;", "SELECT 1;")})
	f.Write(t, "stack.yaml", offlineStack)
	cases := []struct {
		args []string
		code int
		want string // in stderr
	}{
		{[]string{"nosuch"}, 1, `unknown command "nosuch" for "dbops"`},
		{[]string{"backup", "lst"}, 1, `unknown command "lst" for "dbops backup"; did you mean list?`},
		{[]string{"migrations", "fix"}, 1, `unknown command "fix" for "dbops migrations"`},
		{[]string{"backup"}, 0, ""}, // help
		{[]string{"help", "backup", "run"}, 0, ""},
		{[]string{"help", "backup", "lst"}, 1, `unknown help topic "backup lst"`},
		{[]string{"completion", "tcsh"}, 1, `unknown command "tcsh" for "dbops completion"`},
		{[]string{"version", "--format", "yaml"}, 1, `--format "yaml": use text or json`},
		{[]string{"validate", "--format", "yaml", "stack.yaml"}, 1, `--format "yaml": use text or json`},
		{[]string{"plan", "--format", "yaml", "stack.yaml"}, 1, `--format "yaml": use text or json or markdown`},
		{[]string{"apply", "--format", "yaml", "stack.yaml"}, 1, `--format "yaml": use text or json`},
		{[]string{"backup", "list", "--format", "yaml", "-f", "stack.yaml"}, 1, `--format "yaml": use text or json`},
		{[]string{"backup", "run", "shop/pg", "--format", "yaml", "stack.yaml"}, 1, `--format "yaml": use text or json`},
		{[]string{"backup", "drill", "shop/pg", "--format", "yaml"}, 1, `--format "yaml": use text or json`},
		{[]string{"restore", "shop/pg", "--format", "yaml"}, 1, `--format "yaml": use text or json`},
		{[]string{"drift", "shop", "--format", "yaml"}, 1, `--format "yaml": use text or json`},
		{[]string{"inspect", "shop", "--format", "yaml"}, 1, `--format "yaml": use text or json`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			res := f.Run(t, tc.args...)
			if res.Code != tc.code || !strings.Contains(res.Stderr, tc.want) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", res.Code, tc.code, res.Stderr, tc.want)
			}
		})
	}
}

// Stack files are given as PATH arguments or with -f on every command, and
// outside a git work tree the repository root is the folder of the PATH,
// wherever dbops runs from.
func TestStackPathsEverywhere(t *testing.T) {
	stacks := t.TempDir() // no .git above it
	withBackup := offlineStack + "  backups:\n    - {name: pg, source: postgres, schedule: \"@daily\", destination: " + t.TempDir() + ", retention: {keepLast: 1}}\n"
	for name, body := range map[string]string{
		"stack.yaml":             withBackup,
		"migrations/00001_a.sql": clitest.Mig("SELECT 1;", "SELECT 1;"),
	} {
		p := filepath.Join(stacks, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	elsewhere := &clitest.Fixture{Dir: t.TempDir(), Env: map[string]string{}}
	for _, args := range [][]string{
		{"validate", stacks},
		{"validate", "-f", stacks},
		{"validate", "--file", filepath.Join(stacks, "stack.yaml")},
		{"backup", "list", stacks},
		{"backup", "list", "shop/pg", stacks},
		{"backup", "list", "-f", stacks},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			res := elsewhere.Run(t, args...)
			if res.Code != 0 {
				t.Errorf("exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
			}
		})
	}
	// The root still bounds migration dirs: one outside the PATH's folder is refused.
	out := filepath.Join(stacks, "nested")
	os.MkdirAll(out, 0o755)
	os.WriteFile(filepath.Join(out, "stack.yaml"), []byte(strings.Replace(offlineStack, "./migrations", "../migrations", 1)), 0o644)
	if res := elsewhere.Run(t, "validate", out); res.Code != 1 || !strings.Contains(res.Stderr, "outside the repository root") {
		t.Errorf("migrations outside the PATH's folder: exit %d\n%s", res.Code, res.Stderr)
	}
}

func TestValidateJSON(t *testing.T) {
	f := clitest.NewFixture(t, map[string]string{"00001_a.sql": clitest.Mig("SELECT 1;", "SELECT 1;")})
	f.Write(t, "good/stack.yaml", strings.Replace(offlineStack, "./migrations", "../migrations", 1))
	f.Write(t, "bad/stack.yaml", strings.Replace(offlineStack, "./migrations", "./nowhere", 1)+"  redis:\n    url: ${NOT_SET}\n")
	cases := []struct {
		path     string
		code     int
		valid    bool
		errors   int
		warnings int
	}{
		{"good", 0, true, 0, 0},
		{"bad", 1, false, 1, 1},
	}
	var docs []json.RawMessage
	for _, tc := range cases {
		res := f.Run(t, "validate", "--format", "json", tc.path)
		var doc struct {
			Valid    bool
			Stacks   []string
			Errors   []struct{ File, Stack, Field, Message string }
			Warnings []struct{ Field string }
		}
		if err := json.Unmarshal([]byte(res.Stdout), &doc); err != nil {
			t.Fatalf("%s: %v\n%s%s", tc.path, err, res.Stdout, res.Stderr)
		}
		if res.Code != tc.code || doc.Valid != tc.valid || len(doc.Errors) != tc.errors || len(doc.Warnings) != tc.warnings {
			t.Errorf("%s: exit %d, %+v", tc.path, res.Code, doc)
		}
		if tc.errors > 0 && (doc.Errors[0].Stack != "shop" || doc.Errors[0].Field != "spec.postgres.migrations.dir" || doc.Errors[0].File == "") {
			t.Errorf("%s: error %+v does not name file, stack and field", tc.path, doc.Errors[0])
		}
		docs = append(docs, json.RawMessage(res.Stdout))
	}
	for i, v := range ajvtest.Validate(t, "schemas/validate.schema.json", docs) {
		if !v.Valid {
			t.Errorf("%s: validate JSON does not match its schema: %v", cases[i].path, v.Errors)
		}
	}
}

// apply, backup run/list/drill and restore print JSON that matches their schemas.
func TestCommandsJSON(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	dest := t.TempDir()
	f.Write(t, "stack.yaml", clitest.BackupStack(dest, ""))
	f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()

	steps := []struct {
		schema string
		args   []string
		want   string // in stdout
	}{
		{"schemas/apply.schema.json", []string{"apply", "--auto-approve", "--format", "json", "stack.yaml"}, `"status": "done"`},
		{"schemas/apply.schema.json", []string{"apply", "--auto-approve", "--format", "json", "stack.yaml"}, `"stacks": [`}, // nothing left to do
		{"schemas/backup-run.schema.json", []string{"backup", "run", "shop/pg", "--format", "json", "stack.yaml"}, `"formatVersion": "dbops.backup-run/v1"`},
		{"schemas/backup-list.schema.json", []string{"backup", "list", "--format", "json", "stack.yaml"}, `"counted": true`},
		{"schemas/drill.schema.json", []string{"backup", "drill", "shop/pg", "--format", "json", "stack.yaml"}, `"ok": true`},
		{"schemas/restore.schema.json", []string{"restore", "shop/pg", "--to-url", testsrv.PostgresDB(t), "--format", "json", "stack.yaml"}, `"postgres": {`},
		{"schemas/restore.schema.json", []string{"restore", "shop/cache", "--format", "json", "stack.yaml"}, `"walked": true`},
	}
	for _, s := range steps {
		res := f.Run(t, s.args...)
		if res.Code != 0 || !strings.Contains(res.Stdout, s.want) {
			t.Fatalf("dbops %s: exit %d, stdout lacks %q\n%s%s", strings.Join(s.args, " "), res.Code, s.want, res.Stdout, res.Stderr)
		}
		if !json.Valid([]byte(res.Stdout)) {
			t.Fatalf("dbops %s: stdout is not JSON alone:\n%s", strings.Join(s.args, " "), res.Stdout)
		}
		for _, v := range ajvtest.Validate(t, s.schema, []json.RawMessage{json.RawMessage(res.Stdout)}) {
			if !v.Valid {
				t.Errorf("dbops %s: output does not match %s: %v\n%s", strings.Join(s.args, " "), s.schema, v.Errors, res.Stdout)
			}
		}
	}
}

// apply.schema.json's change carries every field of plan.schema.json's
// (apply reports the plan's changes with their outcome): a field added to
// the plan must be added there too.
func TestApplySchemaCoversPlanChanges(t *testing.T) {
	read := func(name string) map[string]any {
		t.Helper()
		b, err := os.ReadFile("../../schemas/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var d map[string]any
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return d
	}
	props := func(d map[string]any, def string) map[string]any {
		return d["$defs"].(map[string]any)[def].(map[string]any)["properties"].(map[string]any)
	}
	plan, apply := props(read("plan.schema.json"), "change"), props(read("apply.schema.json"), "changeResult")
	for k, v := range plan {
		pb, _ := json.Marshal(v)
		ab, _ := json.Marshal(apply[k])
		if string(pb) != string(ab) {
			t.Errorf("change.%s: plan schema %s, apply schema %s", k, pb, ab)
		}
	}
}
