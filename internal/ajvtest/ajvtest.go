// Package ajvtest validates JSON documents against the schemas dbops ships
// with ajv (draft 2020-12, ajv-formats), a validator independent of the
// library the loader embeds, through scripts/ajv-validate.sh. For tests only.
package ajvtest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Verdict is ajv's answer for one document.
type Verdict struct {
	Valid  bool     `json:"valid"`
	Errors []string `json:"errors"`
}

// Validate checks each document against schema (a path relative to the
// module root, e.g. schemas/stack.schema.json). Without node it skips the
// test, or fails it when DBOPS_REQUIRE_SERVERS=1 (CI); -short skips it as
// the first run installs ajv from npm.
func Validate(t testing.TB, schema string, docs []json.RawMessage) []Verdict {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: ajv (npm) not run")
	}
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("DBOPS_REQUIRE_SERVERS") == "1" {
			t.Fatal("node is not installed (apt-get install nodejs npm): the schema tests need ajv")
		}
		t.Skip("node is not installed: schema tests skipped (DBOPS_REQUIRE_SERVERS=1 makes this a failure)")
	}
	root := moduleRoot(t)
	in, err := json.Marshal(docs)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "docs.json")
	if err := os.WriteFile(f, in, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, "scripts", "ajv-validate.sh"), filepath.Join(root, schema), f)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ajv: %v\n%s", err, stderr.String())
	}
	var vs []Verdict
	if err := json.Unmarshal(out, &vs); err != nil || len(vs) != len(docs) {
		t.Fatalf("ajv answered %d verdicts for %d documents (%v): %s", len(vs), len(docs), err, out)
	}
	return vs
}

func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}
