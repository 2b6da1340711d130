package main_test

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
)

// runOnTerminal runs dbops on a pseudo-terminal, types answer once it asks,
// and returns what the terminal showed.
func runOnTerminal(t *testing.T, f *clitest.Fixture, answer string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(clitest.Dbops(t), args...)
	cmd.Dir = f.Dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TERM=xterm"}
	for k, v := range f.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var out bytes.Buffer
	read := make(chan struct{})
	go func() { io.Copy(&out, tty); close(read) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stripANSI(out.String()), "Only 'yes' is accepted") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	tty.Write([]byte(answer + "\n"))
	err = cmd.Wait()
	<-read
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return out.String(), code
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b { // CSI: ESC [ parameters, then a final byte in @..~ ("m" colours, "K" clears)
			for i++; i < len(s) && (s[i] == '[' || s[i] < 0x40 || s[i] > 0x7e); i++ {
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func TestApplyAsksOnATerminal(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
	f.Write(t, "stack.yaml", clitest.CLIStack)

	out, code := runOnTerminal(t, f, "no", "apply", "stack.yaml")
	if code != 1 || !strings.Contains(out, "apply cancelled; nothing was changed") {
		t.Fatalf("answering no: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "\x1b[") {
		t.Errorf("no colour on a terminal:\n%q", out)
	}
	if v := clitest.DBVersion(t, pgURL); v != 0 {
		t.Fatalf("answering no migrated to %d", v)
	}
	out, code = runOnTerminal(t, f, "yes", "apply", "stack.yaml")
	if code != 0 || !strings.Contains(stripANSI(out), "Apply: 5 done") {
		t.Fatalf("answering yes: exit %d\n%s", code, out)
	}
	if v := clitest.DBVersion(t, pgURL); v != 3 {
		t.Errorf("version %d after yes, want 3", v)
	}
}
