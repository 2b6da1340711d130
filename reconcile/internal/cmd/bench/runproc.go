package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile/loop"
)

// --- stacks -----------------------------------------------------------------

// onePG puts every database on pg.
func onePG(pg *testsrv.Postgres) func(int, string) string {
	return func(_ int, db string) string { return pg.URL(db) }
}

// writeStacks writes one stack per database into dir/stacks.yaml (rewritten
// by temp file + rename) and runMigrations migrations into dir/migrations.
func writeStacks(dir, prefix string, pgURL func(i int, db string) string, dbs []string, redisOf func(i int) *testsrv.Redis, maxmemory string) error {
	if err := writeMigrations(dir); err != nil {
		return err
	}
	var b strings.Builder
	// Only the first stack on each Redis manages its settings (two stacks
	// managing one parameter are refused); the others observe it.
	managed := map[*testsrv.Redis]bool{}
	for i, db := range dbs {
		name := prefix
		if len(dbs) > 1 {
			name = fmt.Sprintf("%s-%03d", prefix, i)
		}
		config := "{maxmemory: " + maxmemory + ", maxmemory-policy: allkeys-lru}"
		if rd := redisOf(i); managed[rd] {
			config = "{}"
		} else {
			managed[rd] = true
		}
		fmt.Fprintf(&b, `---
apiVersion: dbops/v1
kind: Stack
metadata: {name: %s}
spec:
  postgres:
    url: %s
    migrations: {dir: ./migrations}
  redis:
    url: %s
    config: %s
`, name, pgURL(i, db), redisOf(i).URL(), config)
	}
	tmp := filepath.Join(dir, ".stacks.yaml.tmp")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "stacks.yaml"))
}

// writeMigrations writes runMigrations migrations into dir/migrations,
// leaving existing files untouched (no file event, no new revision).
func writeMigrations(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "migrations"), 0o755); err != nil {
		return err
	}
	for i := 1; i <= runMigrations; i++ {
		p := filepath.Join(dir, "migrations", fmt.Sprintf("%05d_t%d.sql", i, i))
		body := fmt.Sprintf("-- +goose Up\nCREATE TABLE t%d (id bigserial PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());\n-- +goose Down\nDROP TABLE t%d;\n", i, i)
		if _, err := os.Stat(p); err == nil {
			continue // unchanged: no file event, no new revision
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// --- a dbops run process ----------------------------------------------------

type dbopsProc struct {
	cmd  *exec.Cmd
	addr string
	logs *testsrv.Buffer
	done chan struct{}
}

// startDbops starts `dbops run ...` with --listen on a free port.
func startDbops(bin, dir string, env []string, args ...string) (*dbopsProc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, append(args, "--listen", addr)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	p := &dbopsProc{cmd: cmd, addr: addr, logs: &testsrv.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *dbopsProc) pid() int { return p.cmd.Process.Pid }

func (p *dbopsProc) commandLine() string {
	return "dbops " + strings.Join(p.cmd.Args[1:], " ")
}

// stop sends SIGTERM and waits; a process still running after 60 s is killed.
func (p *dbopsProc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

var client = &http.Client{Timeout: 10 * time.Second}

func (p *dbopsProc) status() (loop.Status, error) {
	var st loop.Status
	select {
	case <-p.done:
		return st, fmt.Errorf("dbops run exited: %s\n%s", p.cmd.ProcessState, p.logs.String())
	default:
	}
	res, err := client.Get("http://" + p.addr + "/status")
	if err != nil {
		return st, err
	}
	defer res.Body.Close()
	return st, json.NewDecoder(res.Body).Decode(&st)
}

// waitStacks waits until /status shows n stacks, all reconciled and in sync.
func (p *dbopsProc) waitStacks(n int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		st, err := p.status()
		if err != nil && strings.Contains(err.Error(), "exited") {
			return err
		}
		ok := err == nil && len(st.Stacks) == n
		for _, s := range st.Stacks {
			ok = ok && len(s.Conditions) > 0 && s.Conditions[0].Reason == loop.ReasonSucceeded
			for _, r := range s.Resources {
				ok = ok && r.State == loop.StateInSync
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d stack(s) not in sync within %s (status error %v)\n%s", n, d, err, p.logs.String())
		}
		if n > 10 {
			time.Sleep(250 * time.Millisecond) // a large /status costs the process CPU
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// webhook POSTs a push event signed as GitHub does.
func (p *dbopsProc) webhook(secret string) error {
	body := `{"ref":"refs/heads/main"}`
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	req, err := http.NewRequest("POST", "http://"+p.addr+"/hooks/git", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		return fmt.Errorf("webhook: %s", res.Status)
	}
	return nil
}

// --- /proc ------------------------------------------------------------------

// cpuTicks is utime+stime of pid, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(fields[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return utime + stime, nil
}

// memory is VmHWM and VmRSS of pid, in bytes.
func memory(pid int) (hwm, rss int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmHWM":
			hwm = n * 1024
		case "VmRSS":
			rss = n * 1024
		}
	}
	if hwm == 0 {
		return 0, 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
	}
	return hwm, rss, nil
}

// clockTicks is USER_HZ (getconf CLK_TCK), 100 when it cannot be read.
func clockTicks() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || n <= 0 {
		return 100
	}
	return n
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func verdict(ok bool) string {
	if ok {
		return "within aim"
	}
	return "ABOVE aim"
}

func summary(d []time.Duration) string {
	lo, hi := d[0], d[0]
	for _, x := range d {
		lo, hi = min(lo, x), max(hi, x)
	}
	return fmt.Sprintf("median %7.1f ms (min %.1f, max %.1f)", ms(median(d)), ms(lo), ms(hi))
}
