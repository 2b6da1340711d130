package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/amanat/dbops/reconcile/loop"

	"github.com/amanat/dbops/internal/testsrv"
)

// benchPool runs only the 100-stack in-process cycle of -only run.
func benchPool(rounds int, po poolBench) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "dbops-bench-pool-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	srv, err := startServers(ctx, 1, testsrv.PostgresOptions{MaxConnections: po.stacks + 100}, 4)
	if err != nil {
		return err
	}
	defer srv.stop()
	return benchFleet(ctx, work, srv.pgs[0], srv.rds, rounds, po)
}

// benchFleet1000 measures `dbops run` processes over a fleet: databases
// spread over 2 PostgreSQL servers, stacks over 4 Redis servers, served
// from a git repository with the webhook (--interval 1h, so every cycle
// measured is one the bench asked for).
func benchFleet1000(bin string, stacks, rounds int) error {
	ctx := context.Background()
	bin, _ = filepath.Abs(bin)
	work, err := os.MkdirTemp("", "dbops-bench-fleet-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	// Room for a session per database, for --pool-per-server below.
	srv, err := startServers(ctx, 2, testsrv.PostgresOptions{MaxConnections: stacks/2 + 100}, 4)
	if err != nil {
		return err
	}
	defer srv.stop()
	pgs, rds := srv.pgs, srv.rds
	dbs := make([]string, stacks)
	errs := make(chan error, len(pgs))
	for k, pg := range pgs {
		go func() {
			for i := k; i < stacks; i += len(pgs) {
				dbs[i] = fmt.Sprintf("fleet_%04d", i)
				if err := pg.CreateDatabase(ctx, dbs[i]); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range pgs {
		if err := <-errs; err != nil {
			return err
		}
	}
	repo := filepath.Join(work, "repo")
	f := &fleet{dir: repo, pgs: pgs, rds: rds, dbs: dbs, measured: stacks - 1, maxmemory: "256mb"}
	if err := f.write(); err != nil {
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
	fmt.Printf("\n%d stacks: %d databases over 2 PostgreSQL, 4 redis-server (%d stacks each, the last one managing its settings), %d migrations per stack; %d CPUs\n",
		stacks, stacks, stacks/len(rds), runMigrations, runtime.NumCPU())

	const secret = "bench-webhook-secret"
	// start runs dbops run with extra arguments; those of the form NAME=value
	// (e.g. GOGC=50) go to its environment instead.
	start := func(cache string, extra ...string) (*dbopsProc, error) {
		env := []string{"DBOPS_BENCH_HOOK=" + secret}
		args := []string{"run", "--repo", repo, "--ref", "main", "--interval", "1h", "--concurrency", "8",
			"--webhook-secret-env", "DBOPS_BENCH_HOOK", "--cache-dir", filepath.Join(work, cache)}
		for _, a := range extra {
			if !strings.HasPrefix(a, "-") && strings.Contains(a, "=") {
				env = append(env, a)
			} else {
				args = append(args, a)
			}
		}
		return startDbops(bin, work, env, args...)
	}

	// One process: first cycle, no-change cycles, commit -> applied.
	p, err := start("one")
	if err != nil {
		return err
	}
	err = func() error {
		defer p.stop()
		t0 := time.Now()
		if err := p.waitStacks(stacks, 15*time.Minute); err != nil {
			return err
		}
		first := time.Since(t0)
		fmt.Printf("  $ %s\n", p.commandLine())
		fmt.Printf("    first cycle applying everything (%d migrations, %d Redis settings), from process start: %.1f s\n", stacks*runMigrations, 2*len(rds), first.Seconds())
		res, err := cycles([]*dbopsProc{p}, secret, rounds)
		if err != nil {
			return err
		}
		hwm, rss, err := memory(p.pid())
		if err != nil {
			return err
		}
		fmt.Printf("    no-change cycle, concurrency 8: %s (aim < 2 s: %s); CPU %.0f ms per cycle; RSS %.1f MB, peak %.1f MB (aim < 100 MB: %s)\n",
			summary(res.spans[0]), verdict(median(res.spans[0]) < 2*time.Second), ms(res.cpu[0]), mb(rss), mb(hwm), verdict(hwm < 100<<20))
		times, err := latencyRounds(p, rds[f.measured%len(rds)], rounds, func(value string) error {
			f.maxmemory = value
			if err := f.write(); err != nil {
				return err
			}
			return git("commit", "-q", "-am", "maxmemory "+value)
		}, func() error { return p.webhook(secret) })
		if err != nil {
			return err
		}
		fmt.Printf("    git commit changing stack %d of %d, then POST /hooks/git: applied in %s (aim < 1 s: %s)\n",
			f.measured+1, stacks, summary(times), verdict(median(times) < time.Second))
		return nil
	}()
	if err != nil {
		return fmt.Errorf("one process: %w", err)
	}

	// The no-change cycle without the pool (before), and with a session kept
	// for every database (the servers allow it here).
	for _, v := range [][]string{{"--no-pool"}, {"--pool-per-server", strconv.Itoa(stacks / 2)}, {"GOGC=50", "--pool-per-server", strconv.Itoa(stacks / 2)}} {
		p, err := start("variant", v...)
		if err != nil {
			return err
		}
		err = func() error {
			defer p.stop()
			if err := p.waitStacks(stacks, 15*time.Minute); err != nil {
				return err
			}
			res, err := cycles([]*dbopsProc{p}, secret, rounds)
			if err != nil {
				return err
			}
			hwm, rss, err := memory(p.pid())
			if err != nil {
				return err
			}
			fmt.Printf("  $ dbops run ... %s\n", strings.Join(v, " "))
			fmt.Printf("    no-change cycle, concurrency 8: %s (aim < 2 s: %s); CPU %.0f ms per cycle; RSS %.1f MB, peak %.1f MB (aim < 100 MB: %s)\n",
				summary(res.spans[0]), verdict(median(res.spans[0]) < 2*time.Second), ms(res.cpu[0]), mb(rss), mb(hwm), verdict(hwm < 100<<20))
			return nil
		}()
		if err != nil {
			return fmt.Errorf("%s: %w", strings.Join(v, " "), err)
		}
	}

	// Two shards, two processes.
	var procs []*dbopsProc
	for i := range 2 {
		p, err := start(fmt.Sprintf("shard%d", i), "--shards", "2", "--shard-index", strconv.Itoa(i))
		if err != nil {
			return err
		}
		defer p.stop()
		procs = append(procs, p)
	}
	for i, p := range procs {
		if err := p.waitOwned(stacks, 15*time.Minute); err != nil {
			return fmt.Errorf("shard %d: %w", i, err)
		}
	}
	res, err := cycles(procs, secret, rounds)
	if err != nil {
		return fmt.Errorf("two shards: %w", err)
	}
	fmt.Printf("  $ %s   (and --shard-index 1)\n", procs[0].commandLine())
	for i, p := range procs {
		st, err := p.status()
		if err != nil {
			return err
		}
		hwm, _, err := memory(p.pid())
		if err != nil {
			return err
		}
		fmt.Printf("    shard %d (%d stacks): no-change cycle %s; CPU %.0f ms per cycle; RSS peak %.1f MB\n",
			i, len(st.Shard.Owned), summary(res.spans[i]), ms(res.cpu[i]), mb(hwm))
	}
	fmt.Printf("    both shards, webhook to each at once: cycle over all %d stacks %s\n", stacks, summary(res.overall))
	for _, p := range procs {
		p.stop()
	}

	// dbops plan from the CLI.
	var planT []time.Duration
	for range rounds {
		d, err := timeCmd(repo, nil, bin, "plan", "--concurrency", "8", "--skip-backups", ".")
		if err != nil {
			return err
		}
		planT = append(planT, d)
	}
	fmt.Printf("  $ dbops plan --concurrency 8 .   (in the repository)\n")
	fmt.Printf("    %d stacks, no changes: %s (aim < 5 s: %s)\n", stacks, summary(planT), verdict(median(planT) < 5*time.Second))
	return nil
}

// fleet writes one stack per database into dir/stacks.yaml and the
// migrations; the last stack on each Redis manages its settings (the
// measured one gets maxmemory, the others 256mb).
type fleet struct {
	dir       string
	pgs       []*testsrv.Postgres
	rds       []*testsrv.Redis
	dbs       []string
	measured  int
	maxmemory string
}

func (f *fleet) write() error {
	if err := writeMigrations(f.dir); err != nil {
		return err
	}
	var b strings.Builder
	for i, db := range f.dbs {
		config := "{}"
		if i+len(f.rds) >= len(f.dbs) {
			mem := "256mb"
			if i == f.measured {
				mem = f.maxmemory
			}
			config = "{maxmemory: " + mem + ", maxmemory-policy: allkeys-lru}"
		}
		fmt.Fprintf(&b, "---\napiVersion: dbops/v1\nkind: Stack\nmetadata: {name: fleet-%04d}\nspec:\n  postgres:\n    url: %s\n    migrations: {dir: ./migrations}\n  redis:\n    url: %s\n    config: %s\n",
			i, f.pgs[i%len(f.pgs)].URL(db), f.rds[i%len(f.rds)].URL(), config)
	}
	tmp := filepath.Join(f.dir, ".stacks.yaml.tmp")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(f.dir, "stacks.yaml"))
}

// cycleResult holds, per process, each cycle's span and the mean CPU.
type cycleResult struct {
	spans   [][]time.Duration
	cpu     []time.Duration
	overall []time.Duration
}

// cycles triggers rounds no-change cycles on every process at once through
// the webhook. A cycle's span runs from the webhook to the end of the last
// stack cycle /status reports (polled every 250 ms, so the polling costs
// the process little CPU; the span comes from the reported times).
func cycles(procs []*dbopsProc, secret string, rounds int) (cycleResult, error) {
	res := cycleResult{spans: make([][]time.Duration, len(procs)), cpu: make([]time.Duration, len(procs))}
	hz := clockTicks()
	cpu0 := make([]int64, len(procs))
	for i, p := range procs {
		t, err := cpuTicks(p.pid())
		if err != nil {
			return res, err
		}
		cpu0[i] = t
	}
	for range rounds {
		start := time.Now()
		for _, p := range procs {
			if err := p.webhook(secret); err != nil {
				return res, err
			}
		}
		var overall time.Time
		for i, p := range procs {
			end, err := p.waitCycle(start, 5*time.Minute)
			if err != nil {
				return res, err
			}
			res.spans[i] = append(res.spans[i], end.Sub(start))
			if end.After(overall) {
				overall = end
			}
		}
		res.overall = append(res.overall, overall.Sub(start))
	}
	for i, p := range procs {
		t, err := cpuTicks(p.pid())
		if err != nil {
			return res, err
		}
		res.cpu[i] = time.Duration(t-cpu0[i]) * time.Second / time.Duration(hz) / time.Duration(rounds)
	}
	return res, nil
}

// waitCycle waits until every stack in /status has finished a cycle after
// since, and returns when the last one finished.
func (p *dbopsProc) waitCycle(since time.Time, d time.Duration) (time.Time, error) {
	deadline := time.Now().Add(d)
	for {
		time.Sleep(250 * time.Millisecond)
		st, err := p.status()
		if err != nil {
			return time.Time{}, err
		}
		var last time.Time
		done := len(st.Stacks) > 0
		for _, s := range st.Stacks {
			if !s.LastCycle.After(since) {
				done = false
				break
			}
			if s.LastCycle.After(last) {
				last = s.LastCycle
			}
		}
		if done {
			return last, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no full cycle within %s\n%s", d, p.logs.String())
		}
	}
}

// waitOwned waits until the process has reconciled every stack of its
// shard, of total stacks in all.
func (p *dbopsProc) waitOwned(total int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		st, err := p.status()
		if err == nil && st.Shard.Total == total && len(st.Stacks) == len(st.Shard.Owned) {
			ok := true
			for _, s := range st.Stacks {
				ok = ok && len(s.Conditions) > 0 && s.Conditions[0].Reason == loop.ReasonSucceeded
			}
			if ok {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("shard not in sync within %s (status error %v)\n%s", d, err, p.logs.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
}
