package main

// The `dbops run` benchmarks (-only run): an idle process's CPU and memory,
// the time from a commit to the setting applied (git + webhook, and --dir),
// and one no-change cycle over 100 stacks measured in-process.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/loop"
	"github.com/amanat/dbops/reconcile/pool"
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
	srv, err := startServers(ctx, 1, testsrv.PostgresOptions{}, 4)
	if err != nil {
		return err
	}
	defer srv.stop()
	pg, rds := srv.pgs[0], srv.rds
	fmt.Printf("\n== dbops run: PostgreSQL on 127.0.0.1:%d, 4 redis-server, %d CPUs, GOMAXPROCS %d, %s/%s ==\n",
		pg.Port, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)

	if err := benchIdle(ctx, bin, work, pg, rds[0]); err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	if err := benchLatency(ctx, bin, work, pg, rds[1], rds[2], rounds); err != nil {
		return fmt.Errorf("commit to applied: %w", err)
	}
	if err := benchFleet(ctx, work, pg, rds, rounds, poolBench{stacks: 100}); err != nil {
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
	if err := writeStacks(dir, "idle", onePG(pg), dbs, func(int) *testsrv.Redis { return rd }, "256mb"); err != nil {
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
	if err := writeStacks(repo, "hooked", onePG(pg), []string{"lat_git"}, func(int) *testsrv.Redis { return rdGit }, "64mb"); err != nil {
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
			if err := writeStacks(repo, "hooked", onePG(pg), []string{"lat_git"}, func(int) *testsrv.Redis { return rdGit }, value); err != nil {
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
	if err := writeStacks(dir, "watched", onePG(pg), []string{"lat_dir"}, func(int) *testsrv.Redis { return rdDir }, "64mb"); err != nil {
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
			return writeStacks(dir, "watched", onePG(pg), []string{"lat_dir"}, func(int) *testsrv.Redis { return rdDir }, value)
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
// every stack's cycle to finish, so the next change never lands mid-cycle.
func latencyRounds(p *dbopsProc, rd *testsrv.Redis, rounds int, change func(value string) error, notify func() error) ([]time.Duration, error) {
	c := goredis.NewClient(&goredis.Options{Addr: net.JoinHostPort(rd.Host, strconv.Itoa(rd.Port)), Password: rd.Password})
	defer c.Close()
	ctx := context.Background()
	var times []time.Duration
	for i := range rounds {
		mbs := 65 + i
		want := strconv.Itoa(mbs * 1024 * 1024)
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
		// The next change must not land in this one's cycle.
		if _, err := p.waitCycle(start, 5*time.Minute); err != nil {
			return nil, err
		}
	}
	return times, nil
}

// --- 100 stacks, in-process -------------------------------------------------

func benchFleet(ctx context.Context, work string, pg *testsrv.Postgres, rds []*testsrv.Redis, rounds int, po poolBench) error {
	stacks := po.stacks
	dir := filepath.Join(work, "fleet")
	var dbs []string
	for i := range stacks {
		db := fmt.Sprintf("fleet_%04d", i)
		if err := pg.CreateDatabase(ctx, db); err != nil {
			return err
		}
		dbs = append(dbs, db)
	}
	perRedis := stacks / len(rds)
	if err := writeStacks(dir, "fleet", onePG(pg), dbs, func(i int) *testsrv.Redis { return rds[i/perRedis] }, "256mb"); err != nil {
		return err
	}
	src, err := source.NewDir(source.DirOptions{Dir: dir, CacheDir: filepath.Join(work, "fleet-cache")})
	if err != nil {
		return err
	}
	defer src.Close()
	fmt.Printf("\none no-change cycle over %d stacks in sync (%d databases in one PostgreSQL, %d redis-server with %d stacks each, %d migrations per stack), in-process, %d cycles per setting:\n",
		stacks, stacks, len(rds), perRedis, runMigrations, rounds)
	fmt.Printf("  loop.New(loop.Options{Source: source.NewDir(...), Concurrency: N, Reconcile: reconcile.Options{ConnectTimeout: 5s, Concurrency: 1, Pool: P}}); Cycle + Wait, after a first cycle that applies\n")
	fmt.Printf("  server load: dbops sessions on the servers, peak while cycling (10 ms samples) and held between cycles\n")
	watch, err := watchSessions(ctx, []*testsrv.Postgres{pg}, rds)
	if err != nil {
		return err
	}
	defer watch.close()
	pids, err := serverPIDs(ctx, []*testsrv.Postgres{pg}, rds)
	if err != nil {
		return err
	}
	hz := clockTicks()
	variants := []struct {
		name string
		conc int
		pool *pool.Options
	}{
		{"no pool", 4, nil},
		{"no pool", 8, nil},
		{"pool, 16 per server (default)", 8, &pool.Options{Idle: 5 * time.Minute, MaxPerServer: 16}},
		{fmt.Sprintf("pool, %d per server", stacks), 8, &pool.Options{Idle: 5 * time.Minute, MaxPerServer: stacks}},
	}
	if po.only != "" {
		variants = slices.DeleteFunc(variants, func(v struct {
			name string
			conc int
			pool *pool.Options
		}) bool {
			return !strings.HasPrefix(v.name, po.only)
		})
	}
	for i, v := range variants {
		var p *pool.Pool
		if v.pool != nil {
			p = pool.New(*v.pool)
		}
		l := loop.New(loop.Options{
			Source:      src,
			Concurrency: v.conc,
			Reconcile:   reconcile.Options{ConnectTimeout: 5 * time.Second, Concurrency: 1, Pool: p},
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
		var cpu time.Duration
		watch.start(ctx)
		s0 := serverCPU(pids)
		stopProf, err := po.startCPU(v.name)
		if err != nil {
			return err
		}
		for range rounds {
			c0 := cpuTime()
			d, err := cycle()
			if err != nil {
				return err
			}
			cpu += cpuTime() - c0
			times = append(times, d)
		}
		stopProf()
		srvCPU := time.Duration(serverCPU(pids)-s0) * time.Second / time.Duration(hz) / time.Duration(rounds)
		peakPG, peakRedis := watch.peaks()
		heldPG, heldRedis := watch.now(ctx)
		for _, s := range l.Status().Stacks {
			if s.Resources == nil || s.Resources[0].State != loop.StateInSync {
				return fmt.Errorf("stack %s: %+v", s.Name, s.Resources)
			}
		}
		fmt.Printf("    %-30s concurrency %d: no-change cycle %s (aim < 2 s: %s), CPU per cycle: dbops %.0f ms, servers %.0f ms; sessions peak %d pg + %d redis, held between cycles %d pg + %d redis; %s %.0f ms\n",
			v.name, v.conc, summary(times), verdict(median(times) < 2*time.Second), ms(cpu/time.Duration(rounds)), ms(srvCPU),
			peakPG, peakRedis, heldPG, heldRedis, what, ms(first))
		if err := po.heap(v.name); err != nil {
			return err
		}
		if p != nil {
			p.Close()
		}
	}
	return nil
}
