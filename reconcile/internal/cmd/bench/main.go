// Command bench measures dbops against the goose CLI on a live throwaway
// server: `dbops plan` against `goose status` on the same database, and
// `dbops apply` against `goose up` from empty, alternating, several rounds.
// `make bench` runs it and prints medians and ratios.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/amanat/dbops/internal/testsrv"
)

func main() {
	bin := flag.String("dbops", "bin/dbops", "the dbops binary")
	rounds := flag.Int("rounds", 7, "rounds per comparison")
	n := flag.Int("migrations", 200, "generated migrations")
	only := flag.String("only", "all", "benchmarks to run: plan (dbops plan/apply against goose), run (dbops run), pool (only the 100-stack cycle of run, pooled and not), fleet (1,000 stacks, sharded), backup (dbops backup against pg_dump), drift (dbops drift cold and warm), or all")
	backupMB := flag.Int("backup-mb", 1024, "size of the generated database for the backup benchmark")
	backupRounds := flag.Int("backup-rounds", 3, "rounds of the backup benchmark")
	fleetStacks := flag.Int("fleet-stacks", 1000, "stacks of the fleet benchmark (databases over 2 PostgreSQL, keys over 4 Redis)")
	var po poolBench
	flag.IntVar(&po.stacks, "pool-stacks", 100, "stacks (databases in one PostgreSQL) of the -only pool benchmark")
	flag.StringVar(&po.only, "pool-variant", "", "run only the -only pool variants whose name starts with this (e.g. \"pool, 16\")")
	flag.StringVar(&po.cpuProfile, "cpuprofile", "", "-only pool: write a CPU profile of each variant's measured cycles to this file (the variant's name appended)")
	flag.StringVar(&po.memProfile, "memprofile", "", "-only pool: write a heap profile after each variant's cycles, its handles still held")
	flag.Parse()
	benches := map[string]func() error{
		"plan":   func() error { return run(*bin, *rounds, *n) },
		"run":    func() error { return benchRun(*bin, *rounds) },
		"backup": func() error { return benchBackup(*bin, *backupMB, *backupRounds) },
		"pool":   func() error { return benchPool(*rounds, po) },
		"fleet":  func() error { return benchFleet1000(*bin, *fleetStacks, *rounds) },
		"drift":  func() error { return benchDrift(*bin, *rounds, *n) },
	}
	order := []string{"plan", "run", "fleet", "backup", "drift"}
	if *only != "all" {
		if benches[*only] == nil {
			fmt.Fprintf(os.Stderr, "bench: -only %q: use plan, run, pool, fleet, backup, drift or all\n", *only)
			os.Exit(2)
		}
		order = []string{*only}
	}
	for _, name := range order {
		fmt.Printf("\n######## %s\n", name)
		if err := benches[name](); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", name, err)
			os.Exit(1)
		}
	}
}

func run(bin string, rounds, n int) error {
	ctx := context.Background()
	bin, _ = filepath.Abs(bin)
	goose, err := buildGoose()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "dbops-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := generate(work, n); err != nil {
		return err
	}
	pg, err := testsrv.StartPostgres(ctx, testsrv.PostgresOptions{})
	if err != nil {
		return err
	}
	defer pg.Stop()
	rd, err := testsrv.StartRedis(ctx, testsrv.RedisOptions{})
	if err != nil {
		return err
	}
	defer rd.Stop()

	fmt.Printf("%d migrations, %d rounds, PostgreSQL on 127.0.0.1:%d, goose CLI %s\n\n", n, rounds, pg.Port, goose)
	var planT, statusT, applyT, upT []time.Duration
	for r := range rounds {
		dbA, dbB := fmt.Sprintf("apply_%d", r), fmt.Sprintf("up_%d", r)
		for _, db := range []string{dbA, dbB} {
			if err := pg.CreateDatabase(ctx, db); err != nil {
				return err
			}
		}
		dbopsApply := func() (time.Duration, error) {
			return timeCmd(work, []string{"PG_URL=" + pg.URL(dbA), "REDIS_URL=" + rd.URL()}, bin, "apply", "--auto-approve", "stack.yaml")
		}
		gooseUp := func() (time.Duration, error) {
			return timeCmd(work, nil, goose, "-dir", "migrations", "postgres", pg.URL(dbB), "up")
		}
		dbopsPlan := func() (time.Duration, error) {
			return timeCmd(work, []string{"PG_URL=" + pg.URL(dbA), "REDIS_URL=" + rd.URL()}, bin, "plan", "stack.yaml")
		}
		gooseStatus := func() (time.Duration, error) {
			return timeCmd(work, nil, goose, "-dir", "migrations", "postgres", pg.URL(dbA), "status")
		}
		// Alternate which tool goes first so neither always gets a warm cache.
		pairs := [][2]func() (time.Duration, error){{dbopsApply, gooseUp}, {dbopsPlan, gooseStatus}}
		outs := [][2]*[]time.Duration{{&applyT, &upT}, {&planT, &statusT}}
		for i, p := range pairs {
			order := []int{0, 1}
			if r%2 == 1 {
				order = []int{1, 0}
			}
			for _, k := range order {
				d, err := p[k]()
				if err != nil {
					return err
				}
				*outs[i][k] = append(*outs[i][k], d)
			}
		}
		// Redis drifts back so every plan/apply round also does Redis work.
		if err := pg.Exec(ctx, "postgres", "SELECT 1"); err != nil {
			return err
		}
		resetRedis(rd)
	}
	report := func(name string, a []time.Duration, bname string, b []time.Duration, aim float64) {
		ma, mb := median(a), median(b)
		ratio := float64(ma) / float64(mb)
		verdict := "within aim"
		if ratio > aim {
			verdict = "ABOVE aim"
		}
		fmt.Printf("%-14s median %8.1f ms   %-14s median %8.1f ms   ratio %.2f× (aim ≤ %.1f×, %s)\n",
			name, ms(ma), bname, ms(mb), ratio, aim, verdict)
	}
	report("dbops plan", planT, "goose status", statusT, 1.0)
	report("dbops apply", applyT, "goose up", upT, 1.1)
	return pendingPlan(ctx, work, bin, goose, pg, rd, rounds, n/2)
}

func resetRedis(rd *testsrv.Redis) {
	cmd := exec.Command("redis-cli", "-p", fmt.Sprint(rd.Port), "config", "set", "maxmemory", "0")
	if rd.Password != "" {
		cmd.Env = append(os.Environ(), "REDISCLI_AUTH="+rd.Password)
	}
	cmd.Run()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func timeCmd(dir string, env []string, bin string, args ...string) (time.Duration, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return d, nil
}

// generate writes n goose migrations and a stack using them.
func generate(dir string, n int) error {
	if err := os.MkdirAll(filepath.Join(dir, "migrations"), 0o755); err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		body := fmt.Sprintf("-- +goose Up\nCREATE TABLE t%03d (id bigserial PRIMARY KEY, name text NOT NULL, data jsonb, created_at timestamptz NOT NULL DEFAULT now());\nCREATE INDEX t%03d_created_idx ON t%03d (created_at);\n-- +goose Down\nDROP TABLE t%03d;\n", i, i, i, i)
		if err := os.WriteFile(filepath.Join(dir, "migrations", fmt.Sprintf("%05d_table_%03d.sql", i, i)), []byte(body), 0o644); err != nil {
			return err
		}
	}
	stack := `apiVersion: dbops/v1
kind: Stack
metadata: {name: bench}
spec:
  postgres:
    url: ${PG_URL}
    migrations: {dir: ./migrations}
  redis:
    url: ${REDIS_URL}
    config: {maxmemory: 256mb, maxmemory-policy: allkeys-lru}
`
	return os.WriteFile(filepath.Join(dir, "stack.yaml"), []byte(stack), 0o644)
}

// benchServers are the throwaway servers of one benchmark.
type benchServers struct {
	pgs []*testsrv.Postgres
	rds []*testsrv.Redis
}

// startServers starts nPG PostgreSQL servers with o and nRedis redis-server;
// on an error it stops those it started.
func startServers(ctx context.Context, nPG int, o testsrv.PostgresOptions, nRedis int) (*benchServers, error) {
	s := &benchServers{}
	for range nPG {
		p, err := testsrv.StartPostgres(ctx, o)
		if err != nil {
			s.stop()
			return nil, err
		}
		s.pgs = append(s.pgs, p)
	}
	for range nRedis {
		r, err := testsrv.StartRedis(ctx, testsrv.RedisOptions{})
		if err != nil {
			s.stop()
			return nil, err
		}
		s.rds = append(s.rds, r)
	}
	return s, nil
}

func (s *benchServers) stop() {
	for _, p := range s.pgs {
		p.Stop()
	}
	for _, r := range s.rds {
		r.Stop()
	}
}

// buildGoose installs the goose CLI of the version in go.mod, once, into
// .bench/ (without the drivers it does not need here).
func buildGoose() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/pressly/goose/v3").Output()
	if err != nil {
		return "", fmt.Errorf("go list goose: %w", err)
	}
	version := strings.TrimSpace(string(out))
	gobin, _ := filepath.Abs(filepath.Join(".bench", "goose-"+version))
	bin := filepath.Join(gobin, "goose")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	fmt.Printf("building goose CLI %s (once) ...\n", version)
	cmd := exec.Command("go", "install", "-tags", "no_clickhouse no_libsql no_mssql no_mysql no_sqlite3 no_vertica no_ydb no_turso no_starrocks",
		"github.com/pressly/goose/v3/cmd/goose@"+version)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building goose: %v\n%s", err, out)
	}
	return bin, nil
}
