package main_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile/lock"
	"github.com/amanat/dbops/reconcile/loop"
)

// runProcess is one `dbops run` child process.
type runProcess struct {
	cmd            *exec.Cmd
	addr           string
	stdout, stderr *testsrv.Buffer
	done           chan struct{}
	code           int
}

// startRun starts `dbops run --dir <fixture>` listening on addr, with its
// own cache dir; it does not wait for it to be up. The process is killed at
// the end of the test if it still runs, and its output logged on failure.
func startRun(t *testing.T, f *clitest.Fixture, addr string, args ...string) *runProcess {
	t.Helper()
	all := append([]string{"run", "--dir", f.Dir, "--listen", addr, "--cache-dir", t.TempDir()}, args...)
	cmd := exec.Command(clitest.Dbops(t), all...)
	cmd.Dir = f.Dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range f.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &runProcess{cmd: cmd, addr: addr, stdout: &testsrv.Buffer{}, stderr: &testsrv.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("dbops %s\n%s", strings.Join(all, " "), p.output())
		}
	})
	return p
}

func (p *runProcess) output() string { return p.stdout.String() + p.stderr.String() }

func (p *runProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the process to exit and returns its exit code.
func (p *runProcess) wait(d time.Duration) (int, bool) {
	select {
	case <-p.done:
		return p.code, true
	case <-time.After(d):
		return 0, false
	}
}

// stop sends SIGTERM and waits (60s at most) for the exit code.
func (p *runProcess) stop(t *testing.T) int {
	t.Helper()
	if !p.exited() {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	code, ok := p.wait(60 * time.Second)
	if !ok {
		t.Fatalf("dbops run still running 60s after SIGTERM:\n%s", p.output())
	}
	return code
}

// waitUp waits until /healthz answers.
func (p *runProcess) waitUp(t *testing.T) {
	t.Helper()
	eventually(t, "dbops run answering /healthz", func() bool {
		if p.exited() {
			t.Fatalf("dbops run exited (code %d):\n%s", p.code, p.output())
		}
		res, err := httpClient.Get("http://" + p.addr + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// get returns the body of GET path; the process must answer.
func (p *runProcess) get(t *testing.T, path string) string {
	t.Helper()
	res, err := httpClient.Get("http://" + p.addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return string(b)
}

// stackStatus is the stack's entry in /status; the zero value while the
// process is not answering yet or has not loaded the stack.
func stackStatus(t *testing.T, p *runProcess, stack string) loop.StackStatus {
	t.Helper()
	res, err := httpClient.Get("http://" + p.addr + "/status")
	if err != nil {
		return loop.StackStatus{}
	}
	defer res.Body.Close()
	var st loop.Status
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatalf("/status: %v", err)
	}
	for _, s := range st.Stacks {
		if s.Name == stack {
			return s
		}
	}
	return loop.StackStatus{}
}

func resourceState(s loop.StackStatus, resource string) string {
	for _, r := range s.Resources {
		if r.Resource == resource {
			return r.State
		}
	}
	return ""
}

func failedReason(s loop.StackStatus) bool {
	return len(s.Conditions) > 0 && (s.Conditions[0].Reason == loop.ReasonPlanFailed || s.Conditions[0].Reason == loop.ReasonApplyFail)
}

// metricSum adds up every series of a metric in a Prometheus text exposition.
func metricSum(exposition, name string) float64 {
	var sum float64
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// freeAddrs returns n distinct free 127.0.0.1 ports, found by listening on
// them all at once and closing.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		out = append(out, ln.Addr().String())
	}
	return out
}

// sleepingMigrations counts dbops sessions running pg_sleep in this database.
func sleepingMigrations(t *testing.T, db *pgx.Conn) int {
	t.Helper()
	var n int
	clitest.QueryRow(t, db, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'dbops' AND state = 'active'
		AND query ILIKE '%pg_sleep%' AND pid <> pg_backend_pid()`, nil, &n)
	return n
}

const inThisDB = "locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"

// stackLocks counts the granted dbops advisory locks of stack in this
// database, and the sessions holding them.
func stackLocks(t *testing.T, db *pgx.Conn, stack string) (locks, sessions int) {
	t.Helper()
	clitest.QueryRow(t, db, "SELECT count(*), count(DISTINCT pid) FROM pg_locks WHERE "+inThisDB+
		" AND classid = $1 AND objid::bigint = $2 AND objsubid = 2",
		[]any{dbopsLockClass, int64(uint32(lock.Key(stack)))}, &locks, &sessions)
	return locks, sessions
}

// anyDbopsLocks counts the granted dbops advisory locks of any stack.
func anyDbopsLocks(t *testing.T, db *pgx.Conn) (locks, sessions int) {
	t.Helper()
	clitest.QueryRow(t, db, "SELECT count(*), count(DISTINCT pid) FROM pg_locks WHERE "+inThisDB+
		" AND classid = $1 AND objsubid = 2", []any{dbopsLockClass}, &locks, &sessions)
	return locks, sessions
}

// gooseLocks counts goose's migration lock (a one-key advisory lock).
func gooseLocks(t *testing.T, db *pgx.Conn) int {
	t.Helper()
	var n int
	clitest.QueryRow(t, db, "SELECT count(*) FROM pg_locks WHERE "+inThisDB+
		" AND classid = 0 AND objid::bigint = $1 AND objsubid = 1", []any{int64(gooseLockID)}, &n)
	return n
}

// versionCounts maps each version in goose's table (but 0) to its rows.
func versionCounts(t *testing.T, db *pgx.Conn) map[int64]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := db.Query(ctx, "SELECT version_id, count(*) FROM goose_db_version WHERE version_id > 0 GROUP BY version_id")
	if err != nil {
		t.Fatalf("read goose_db_version: %v", err)
	}
	out := map[int64]int{}
	for rows.Next() {
		var v int64
		var n int
		if err := rows.Scan(&v, &n); err != nil {
			t.Fatal(err)
		}
		out[v] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func tableExists(t *testing.T, db *pgx.Conn, table string) bool {
	t.Helper()
	var ok bool
	clitest.QueryRow(t, db, "SELECT to_regclass($1) IS NOT NULL", []any{table}, &ok)
	return ok
}

// eventually polls cond every 20ms until it holds or 30s pass; it bounds a
// wait, it does not measure speed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
