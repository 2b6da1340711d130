package main

// The `dbops run` benchmarks (-only run): an idle process's CPU and memory,
// the time from a commit to the setting applied (git + webhook, and --dir),
// and one no-change cycle over 100 stacks measured in-process.

import (
	"context"
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
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/internal/testsrv"
	"github.com/amanat/dbops/reconcile/loop"
	"github.com/amanat/dbops/reconcile/source"
)

// runMigrations is how many migrations each benchmark stack has.
const runMigrations = 5

func benchRun(bin string, rounds int) error {
	ctx := context.Background()
	bin, _ = filepath.Abs(bin)
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%w (run make build first)", err)
	}
	work, err := os.MkdirTemp("", "dbops-bench-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	pg, err := testsrv.StartPostgres(ctx, testsrv.PostgresOptions{})
	if err != nil {
		return err
	}
	defer pg.Stop()
	var rds []*testsrv.Redis
	defer func() {
		for _, r := range rds {
			r.Stop()
		}
	}()
	for range 4 {
		r, err := testsrv.StartRedis(ctx, testsrv.RedisOptions{})
		if err != nil {
			return err
		}
		rds = append(rds, r)
	}
	fmt.Printf("\n== dbops run: PostgreSQL on 127.0.0.1:%d, 4 redis-server, %d CPUs, GOMAXPROCS %d, %s/%s ==\n",
		pg.Port, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)

	if err := benchIdle(ctx, bin, work, pg, rds[0]); err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	if err := benchLatency(ctx, bin, work, pg, rds[1], rds[2], rounds); err != nil {
		return fmt.Errorf("commit to applied: %w", err)
	}
	if err := benchFleet(ctx, work, pg, rds, rounds); err != nil {
		return fmt.Errorf("100 stacks: %w", err)
	}
	return nil
}

// --- idle -------------------------------------------------------------------

// benchIdle brings 10 stacks in sync with `dbops apply`, then watches an idle
// `dbops run` for 60 s at the default interval and at 10s.
func benchIdle(ctx context.Context, bin, work string, pg *testsrv.Postgres, rd *testsrv.Redis) error {
	const stacks = 10
	const window = 60 * time.Second
	dir := filepath.Join(work, "idle")
	var dbs []string
	for i := range stacks {
		db := fmt.Sprintf("idle_%02d", i)
		if err := pg.CreateDatabase(ctx, db); err != nil {
			return err
		}
		dbs = append(dbs, db)
	}
	if err := writeStacks(dir, "idle", pg, dbs, func(int) *testsrv.Redis { return rd }, "256mb"); err != nil {
		return err
	}
	apply := exec.Command(bin, "apply", "--auto-approve", dir)
	apply.Dir = dir
	if out, err := apply.CombinedOutput(); err != nil {
		return fmt.Errorf("dbops apply: %v\n%s", err, out)
	}
	tick := clockTicks()
	fmt.Printf("\nidle dbops run, %d stacks in sync (%d databases in one PostgreSQL + one Redis), %s window after the first cycle:\n", stacks, stacks, window)
	for _, interval := range []string{"", "10s"} {
		args := []string{"run", "--dir", dir, "--cache-dir", filepath.Join(work, "idle-cache"+interval)}
		if interval != "" {
			args = append(args, "--interval", interval)
		}
		p, err := startDbops(bin, dir, nil, args...)
		if err != nil {
			return err
		}
		err = func() error {
			defer p.stop()
			if err := p.waitStacks(stacks, 60*time.Second); err != nil {
				return err
			}
			t0, err := cpuTicks(p.pid())
			if err != nil {
				return err
			}
			time.Sleep(window)
			t1, err := cpuTicks(p.pid())
			if err != nil {
				return err
			}
			hwm, rss, err := memory(p.pid())
			if err != nil {
				return err
			}
			if err := p.waitStacks(stacks, time.Second); err != nil {
				return fmt.Errorf("stacks no longer in sync after the window: %w", err)
			}
			label := interval
			if label == "" {
				label = "1m (default)"
			}
			fmt.Printf("  $ %s\n", p.commandLine())
			fmt.Printf("    interval %-12s CPU %d ticks (%d ms at %d ticks/s) in %s = %.2f%% of one core; peak RSS (VmHWM) %.1f MB, RSS now %.1f MB (aim < 40 MB: %s)\n",
				label, t1-t0, (t1-t0)*1000/tick, tick, window, float64(t1-t0)/float64(tick)/window.Seconds()*100,
				mb(hwm), mb(rss), verdict(mb(hwm) < 40))
			return nil
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

// --- commit to applied ------------------------------------------------------

func benchLatency(ctx context.Context, bin, work string, pg *testsrv.Postgres, rdGit, rdDir *testsrv.Redis, rounds int) error {
	fmt.Printf("\ntime from a commit to the setting applied (Redis maxmemory, CONFIG GET polled every 5 ms), %d rounds:\n", rounds)

	// git: a local repository, --interval 1h so only the webhook brings a commit.
	repo := filepath.Join(work, "repo")
	if err := pg.CreateDatabase(ctx, "lat_git"); err != nil {
		return err
	}
	if err := writeStacks(repo, "hooked", pg, []string{"lat_git"}, func(int) *testsrv.Redis { return rdGit }, "64mb"); err != nil {
		return err
	}
	git := func(args ...string) error {
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=bench", "-c", "user.email=bench@example.com", "-c", "commit.gpgsign=false"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-q", "-m", "first"}} {
		if err := git(args...); err != nil {
			return err
		}
	}
	const secret = "bench-webhook-secret"
	p, err := startDbops(bin, work, []string{"DBOPS_BENCH_HOOK=" + secret},
		"run", "--repo", repo, "--ref", "main", "--interval", "1h", "--webhook-secret-env", "DBOPS_BENCH_HOOK",
		"--cache-dir", filepath.Join(work, "git-cache"))
	if err != nil {
		return err
	}
	gitTimes, err := func() ([]time.Duration, error) {
		defer p.stop()
		if err := p.waitStacks(1, 60*time.Second); err != nil {
			return nil, err
		}
		return latencyRounds(p, rdGit, rounds, func(value string) error {
			if err := writeStacks(repo, "hooked", pg, []string{"lat_git"}, func(int) *testsrv.Redis { return rdGit }, value); err != nil {
				return err
			}
			return git("commit", "-q", "-am", "maxmemory "+value)
		}, func() error { return p.webhook(secret) })
	}()
	if err != nil {
		return fmt.Errorf("git: %w", err)
	}
	fmt.Printf("  $ %s\n", p.commandLine())
	fmt.Printf("    git commit, then POST /hooks/git (X-Hub-Signature-256): %s (aim < 1 s: %s)\n", summary(gitTimes), verdict(median(gitTimes) < time.Second))

	// --dir: the file is rewritten as editors do (temp file + rename).
	dir := filepath.Join(work, "watched")
	if err := pg.CreateDatabase(ctx, "lat_dir"); err != nil {
		return err
	}
	if err := writeStacks(dir, "watched", pg, []string{"lat_dir"}, func(int) *testsrv.Redis { return rdDir }, "64mb"); err != nil {
		return err
	}
	p, err = startDbops(bin, dir, nil, "run", "--dir", dir, "--cache-dir", filepath.Join(work, "dir-cache"))
	if err != nil {
		return err
	}
	dirTimes, err := func() ([]time.Duration, error) {
		defer p.stop()
		if err := p.waitStacks(1, 60*time.Second); err != nil {
			return nil, err
		}
		return latencyRounds(p, rdDir, rounds, func(value string) error {
			return writeStacks(dir, "watched", pg, []string{"lat_dir"}, func(int) *testsrv.Redis { return rdDir }, value)
		}, nil)
	}()
	if err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	fmt.Printf("  $ %s\n", p.commandLine())
	fmt.Printf("    stack file rewritten (temp + rename), fsnotify:          %s (aim < 1 s: %s)\n", summary(dirTimes), verdict(median(dirTimes) < time.Second))
	return nil
}

// latencyRounds changes maxmemory with change (then calls notify, if any),
// and times until CONFIG GET shows the new value. Between rounds it waits for
// the stack's cycle to finish, so the next change never lands mid-cycle.
func latencyRounds(p *dbopsProc, rd *testsrv.Redis, rounds int, change func(value string) error, notify func() error) ([]time.Duration, error) {
	c := goredis.NewClient(&goredis.Options{Addr: net.JoinHostPort(rd.Host, strconv.Itoa(rd.Port)), Password: rd.Password})
	defer c.Close()
	ctx := context.Background()
	var times []time.Duration
	for i := range rounds {
		mbs := 65 + i
		want := strconv.Itoa(mbs * 1024 * 1024)
		before, err := p.lastCycle()
		if err != nil {
			return nil, err
		}
		if err := change(fmt.Sprintf("%dmb", mbs)); err != nil {
			return nil, err
		}
		start := time.Now()
		if notify != nil {
			if err := notify(); err != nil {
				return nil, err
			}
		}
		deadline := start.Add(30 * time.Second)
		for {
			v, err := c.ConfigGet(ctx, "maxmemory").Result()
			if err != nil {
				return nil, err
			}
			if v["maxmemory"] == want {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("maxmemory still %s 30 s after the change to %s\n%s", v["maxmemory"], want, p.logs.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
		times = append(times, time.Since(start))
		deadline = time.Now().Add(30 * time.Second)
		for {
			last, err := p.lastCycle()
			if err != nil {
				return nil, err
			}
			if last.After(before) {
				break
			}
			if time.Now().After(deadline) {
				return nil, errors.New("the stack's cycle did not finish")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return times, nil
}

// --- 100 stacks, in-process -------------------------------------------------

func benchFleet(ctx context.Context, work string, pg *testsrv.Postgres, rds []*testsrv.Redis, rounds int) error {
	const stacks = 100
	dir := filepath.Join(work, "fleet")
	var dbs []string
	for i := range stacks {
		db := fmt.Sprintf("fleet_%03d", i)
		if err := pg.CreateDatabase(ctx, db); err != nil {
			return err
		}
		dbs = append(dbs, db)
	}
	perRedis := stacks / len(rds)
	if err := writeStacks(dir, "fleet", pg, dbs, func(i int) *testsrv.Redis { return rds[i/perRedis] }, "256mb"); err != nil {
		return err
	}
	src, err := source.NewDir(source.DirOptions{Dir: dir, CacheDir: filepath.Join(work, "fleet-cache")})
	if err != nil {
		return err
	}
	defer src.Close()
	fmt.Printf("\none no-change cycle over %d stacks in sync (%d databases in one PostgreSQL, %d redis-server with %d stacks each, %d migrations per stack), in-process, %d cycles per setting:\n",
		stacks, stacks, len(rds), perRedis, runMigrations, rounds)
	fmt.Printf("  loop.New(loop.Options{Source: source.NewDir(...), Concurrency: N, Reconcile: reconcile.Options{ConnectTimeout: 5s, Concurrency: 1}}); Cycle + Wait, after a first cycle that applies\n")
	for i, conc := range []int{4, 8} {
		l := loop.New(loop.Options{
			Source:      src,
			Concurrency: conc,
			Reconcile:   reconcile.Options{ConnectTimeout: 5 * time.Second, Concurrency: 1},
			Holder:      "bench",
		})
		cycle := func() (time.Duration, error) {
			start := time.Now()
			l.Cycle(ctx)
			l.Wait()
			d := time.Since(start)
			st := l.Status()
			if len(st.Stacks) != stacks {
				return 0, fmt.Errorf("%d stacks in status, want %d (rejected: %+v, fetch error: %s)", len(st.Stacks), stacks, st.Rejected, st.FetchError)
			}
			for _, s := range st.Stacks {
				if len(s.Conditions) == 0 || s.Conditions[0].Reason != loop.ReasonSucceeded {
					return 0, fmt.Errorf("stack %s not reconciled: %+v", s.Name, s.Conditions)
				}
			}
			return d, nil
		}
		first, err := cycle()
		if err != nil {
			return err
		}
		what := "first cycle (applies everything)"
		if i > 0 {
			what = "first cycle of a new loop (already in sync)"
		}
		var times []time.Duration
		for range rounds {
			d, err := cycle()
			if err != nil {
				return err
			}
			times = append(times, d)
		}
		for _, s := range l.Status().Stacks {
			if s.Resources == nil || s.Resources[0].State != loop.StateInSync {
				return fmt.Errorf("stack %s: %+v", s.Name, s.Resources)
			}
		}
		fmt.Printf("    concurrency %d: no-change cycle %s (aim < 2 s: %s); %s %.0f ms\n",
			conc, summary(times), verdict(median(times) < 2*time.Second), what, ms(first))
	}
	return nil
}

// --- stacks -----------------------------------------------------------------

// writeStacks writes one stack per database into dir/stacks.yaml (rewritten
// by temp file + rename) and runMigrations migrations into dir/migrations.
func writeStacks(dir, prefix string, pg *testsrv.Postgres, dbs []string, redisOf func(i int) *testsrv.Redis, maxmemory string) error {
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
	var b strings.Builder
	for i, db := range dbs {
		name := prefix
		if len(dbs) > 1 {
			name = fmt.Sprintf("%s-%03d", prefix, i)
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
    config: {maxmemory: %s, maxmemory-policy: allkeys-lru}
`, name, pg.URL(db), redisOf(i).URL(), maxmemory)
	}
	tmp := filepath.Join(dir, ".stacks.yaml.tmp")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "stacks.yaml"))
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
		time.Sleep(20 * time.Millisecond)
	}
}

// lastCycle is the latest end of a stack cycle shown by /status.
func (p *dbopsProc) lastCycle() (time.Time, error) {
	st, err := p.status()
	if err != nil {
		return time.Time{}, err
	}
	var last time.Time
	for _, s := range st.Stacks {
		if s.LastCycle.After(last) {
			last = s.LastCycle
		}
	}
	return last, nil
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
