package main_test

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"github.com/amanat/dbops/internal/clitest"
)

// The image's ENTRYPOINT is dbops itself, and its default CMD is a command
// line dbops accepts (the image is not built here: no container engine).
func TestDockerfileEntrypointAndCmd(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	exec := func(instr string) []string {
		t.Helper()
		m := regexp.MustCompile(`(?m)^`+instr+` (\[.*\])\s*$`).FindAllSubmatch(b, -1)
		if len(m) != 1 {
			t.Fatalf("want one %s in exec form, found %d", instr, len(m))
		}
		var args []string
		if err := json.Unmarshal(m[0][1], &args); err != nil {
			t.Fatalf("%s %s: %v", instr, m[0][1], err)
		}
		return args
	}
	if ep := exec("ENTRYPOINT"); len(ep) != 1 || ep[0] != "dbops" {
		t.Errorf(`ENTRYPOINT %q, want ["dbops"] so that docker run IMAGE version works`, ep)
	}
	cmd := exec("CMD")
	if len(cmd) == 0 || cmd[0] != "run" {
		t.Fatalf("CMD %q does not start with run", cmd)
	}
	// --help parses every flag given before it: an unknown one fails.
	f := clitest.NewFixture(t, nil)
	if res := f.Run(t, append(cmd, "--help")...); res.Code != 0 {
		t.Errorf("dbops %q --help: exit %d\n%s", cmd, res.Code, res.Stderr)
	}
	for _, label := range []string{"source", "revision", "version"} {
		if !regexp.MustCompile(`org\.opencontainers\.image\.` + label + `=`).Match(b) {
			t.Errorf("no OCI label org.opencontainers.image.%s", label)
		}
	}
}
