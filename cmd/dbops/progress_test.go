package main_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/jackc/pgx/v5"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
)

// gateLock is the advisory lock the blocking migration waits for: the test
// holds it, so the migration runs exactly as long as the test wants.
const gateLock = 4242

// blockingMigration waits for the test's advisory lock inside its
// transaction, after creating a table (gone again if it is rolled back).
var blockingMigration = "-- dbops:lock-timeout 10m\n" +
	clitest.Mig("CREATE TABLE block_t (id int);\nSELECT pg_advisory_xact_lock(4242);", "DROP TABLE block_t;")

var gatedMigrations = map[string]string{
	"00001_first.sql": clitest.Mig("CREATE TABLE first_t (id int);", "DROP TABLE first_t;"),
	"00002_block.sql": blockingMigration,
	"00003_after.sql": clitest.Mig("CREATE TABLE after_t (id int);", "DROP TABLE after_t;"),
}

// proc is dbops running in the background, on a terminal or on pipes.
type proc struct {
	cmd  *exec.Cmd
	tty  *os.File // nil on pipes
	out  testsrv.Buffer
	done chan struct{}
	code int
}

func startDbops(t *testing.T, f *clitest.Fixture, onTerminal bool, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(clitest.Dbops(t), args...), done: make(chan struct{})}
	p.cmd.Dir = f.Dir
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TERM=xterm"}
	for k, v := range f.Env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	read := make(chan struct{})
	if onTerminal {
		tty, err := pty.Start(p.cmd)
		if err != nil {
			t.Fatal(err)
		}
		p.tty = tty
		go func() { copyAll(&p.out, tty); close(read) }()
	} else {
		p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		close(read)
	}
	go func() {
		err := p.cmd.Wait()
		<-read
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.code = ee.ExitCode()
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if p.tty != nil {
			p.tty.Close()
		}
	})
	return p
}

func copyAll(dst *testsrv.Buffer, src *os.File) {
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		dst.Write(buf[:n])
		if err != nil {
			return
		}
	}
}

func (p *proc) output() string { return p.out.String() }

// waitFor polls until the output holds s.
func (p *proc) waitFor(t *testing.T, s string) {
	t.Helper()
	eventually(t, "output "+strconvQuote(s), func() bool {
		return strings.Contains(stripANSI(p.output()), s) || p.exited()
	})
	if !strings.Contains(stripANSI(p.output()), s) {
		t.Fatalf("dbops exited (code %d) before printing %q:\n%s", p.code, s, p.output())
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(2 * time.Minute):
		t.Fatalf("dbops still running after 2 minutes:\n%s", p.output())
		return 0
	}
}

func strconvQuote(s string) string { return `"` + s + `"` }

// holdGate takes the gate lock on the test's own session.
func holdGate(t *testing.T, db *pgx.Conn) {
	t.Helper()
	if _, err := db.Exec(context.Background(), "SELECT pg_advisory_lock($1)", gateLock); err != nil {
		t.Fatal(err)
	}
}

func releaseGate(t *testing.T, db *pgx.Conn) {
	t.Helper()
	if _, err := db.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", gateLock); err != nil {
		t.Fatal(err)
	}
}

// waitingOnGate reports whether a dbops session waits for the gate lock.
func waitingOnGate(t *testing.T, db *pgx.Conn) bool {
	t.Helper()
	var n int
	clitest.QueryRow(t, db, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
		AND application_name = 'dbops' AND wait_event_type = 'Lock' AND query ILIKE '%pg_advisory_xact_lock(4242)%'`, nil, &n)
	return n > 0
}

func gatedFixture(t *testing.T) (*clitest.Fixture, *pgx.Conn, string) {
	t.Helper()
	pgURL := testsrv.PostgresDB(t)
	f := clitest.NewFixture(t, gatedMigrations)
	f.Env["PG_URL"] = pgURL
	f.Write(t, "stack.yaml", clitest.StackYAML("shop", clitest.PGMigrations))
	return f, clitest.Monitor(t, pgURL), pgURL
}

// Without a terminal: each change's start and end with its duration, and a
// "still running" line every interval while the migration waits; plain
// lines, no control characters.
func TestApplyProgressLines(t *testing.T) {
	f, db, pgURL := gatedFixture(t)
	holdGate(t, db)
	p := startDbops(t, f, false, "apply", "--auto-approve", "--progress-interval", "100ms", "stack.yaml")
	p.waitFor(t, "shop: still running up 00002_block.sql (200ms elapsed)")
	releaseGate(t, db)
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.output())
	}
	out := p.output()
	for _, want := range []string{
		"shop: started up 00001_first.sql", "shop: done up 00001_first.sql in ",
		"shop: started up 00002_block.sql", "shop: still running up 00002_block.sql (100ms elapsed)",
		"shop: done up 00002_block.sql in ", "shop: done up 00003_after.sql in ", "Apply: 3 done, 0 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.ContainsAny(out, "\x1b\r") {
		t.Errorf("control characters without a terminal:\n%q", out)
	}
	if v := clitest.DBVersion(t, pgURL); v != 3 {
		t.Errorf("version %d, want 3", v)
	}
}

// Ctrl-C at the prompt cancels at once, without waiting for Enter.
func TestApplyCtrlCAtPrompt(t *testing.T) {
	f, _, pgURL := gatedFixture(t)
	p := startDbops(t, f, true, "apply", "stack.yaml")
	p.waitFor(t, "Only 'yes' is accepted")
	p.tty.Write([]byte{3}) // Ctrl-C, turned into SIGINT by the terminal
	if code := p.wait(t); code != 130 {
		t.Fatalf("exit %d after Ctrl-C at the prompt, want 130:\n%s", code, p.output())
	}
	if out := p.output(); !strings.Contains(out, "apply cancelled; nothing was changed") {
		t.Errorf("output:\n%s", out)
	}
	if v := clitest.DBVersion(t, pgURL); v != 0 {
		t.Errorf("version %d after cancelling, want 0", v)
	}
}

// Ctrl-C while a migration runs: no further change starts; the running
// migration finishes within --grace, or is rolled back after it; apply says
// which and exits 130.
func TestApplyCtrlCDuringMigration(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		release  bool // the test lets the migration finish
		says     string
		version  int64
		block    bool   // block_t exists afterwards
		notStart string // how 00003 is reported
	}{
		{name: "finishes within grace", release: true, says: "shop: up 00002_block.sql finished", version: 2, block: true,
			notStart: "skipped up 00003_after.sql: not started: interrupted"},
		{name: "rolled back after grace", args: []string{"--grace", "1s"}, says: "shop: up 00002_block.sql was rolled back", version: 1,
			notStart: "skipped up 00003_after.sql: not applied: 00002_block.sql failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, db, pgURL := gatedFixture(t)
			holdGate(t, db)
			p := startDbops(t, f, true, append([]string{"apply", "stack.yaml"}, tc.args...)...)
			p.waitFor(t, "Only 'yes' is accepted")
			p.tty.Write([]byte("yes\n"))
			p.waitFor(t, "started up 00002_block.sql")
			eventually(t, "the migration waiting on the gate", func() bool { return waitingOnGate(t, db) })
			p.tty.Write([]byte{3})
			p.waitFor(t, "Interrupted: stopping before the next change")
			if tc.release {
				releaseGate(t, db)
			}
			code := p.wait(t)
			out := stripANSI(p.output())
			if code != 130 {
				t.Errorf("exit %d, want 130:\n%s", code, out)
			}
			for _, want := range []string{tc.says, tc.notStart, "1 change(s) not started"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if v := clitest.DBVersion(t, pgURL); v != tc.version {
				t.Errorf("version %d, want %d", v, tc.version)
			}
			if tableExists(t, db, "block_t") != tc.block || tableExists(t, db, "after_t") {
				t.Errorf("block_t exists: %v (want %v); after_t exists: %v (want false)",
					tableExists(t, db, "block_t"), tc.block, tableExists(t, db, "after_t"))
			}
		})
	}
}

// On a terminal a running backup shows a live line (bytes written, rate)
// redrawn in place; it is cleared before the next line. apply and backup
// run show the same.
func TestBackupLiveLineOnATerminal(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []*regexp.Regexp
	}{
		{"apply", []string{"apply", "stack.yaml"}, []*regexp.Regexp{
			regexp.MustCompile(`shop: backup pg: \d+(\.\d)? (B|KiB|MiB) written, .*/s`),
			regexp.MustCompile(`shop: done backup pg in \S+ \(\d+(\.\d)? (B|KiB|MiB), `)}},
		{"backup run", []string{"backup", "run", "shop/pg", "stack.yaml"}, []*regexp.Regexp{
			regexp.MustCompile(`shop: done backup pg in `), regexp.MustCompile(`backup shop/pg: `)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pgURL := testsrv.PostgresDB(t)
			db := clitest.Monitor(t, pgURL)
			ctx := context.Background()
			if _, err := db.Exec(ctx, "CREATE TABLE hold_t (id int)"); err != nil {
				t.Fatal(err)
			}
			// The backup reads every table: it waits while the test holds this lock.
			tx, err := db.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, "LOCK TABLE hold_t IN ACCESS EXCLUSIVE MODE"); err != nil {
				t.Fatal(err)
			}
			f := clitest.NewFixture(t, nil)
			f.Write(t, "stack.yaml", clitest.StackYAML("shop", "  postgres:\n    url: ${PG_URL}\n  backups:\n"+
				"    - {name: pg, source: postgres, schedule: \"@daily\", destination: "+t.TempDir()+", retention: {keepLast: 1}}\n"))
			f.Env["PG_URL"] = pgURL
			p := startDbops(t, f, true, tc.args...)
			if tc.args[0] == "apply" {
				p.waitFor(t, "Only 'yes' is accepted")
				p.tty.Write([]byte("yes\n"))
			}
			eventually(t, "the live line of the running backup", func() bool {
				return strings.Contains(p.output(), "\r\x1b[K  shop: backup pg: ") || p.exited()
			})
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			if code := p.wait(t); code != 0 {
				t.Fatalf("exit %d:\n%q", code, p.output())
			}
			out := stripANSI(p.output())
			for _, re := range tc.want {
				if !re.MatchString(out) {
					t.Errorf("output lacks %s:\n%s", re, out)
				}
			}
		})
	}
}
