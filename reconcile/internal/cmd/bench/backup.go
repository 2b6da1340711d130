package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/amanat/dbops/reconcile/internal/testsrv"
)

// benchBackup backs up a generated database of about sizeMB with
// `dbops backup run` and with `pg_dump -Fc` alone, alternating, and reports
// both medians, their ratio and dbops' peak RSS.
func benchBackup(bin string, sizeMB, rounds int) error {
	ctx := context.Background()
	pg, err := testsrv.StartPostgres(ctx, testsrv.PostgresOptions{})
	if err != nil {
		return err
	}
	defer pg.Stop()
	if err := pg.CreateDatabase(ctx, "big"); err != nil {
		return err
	}
	fmt.Printf("generating ~%d MB of rows ...\n", sizeMB)
	start := time.Now()
	// ~260 bytes a row on disk: payload, a JSONB document and the tuple header.
	rows := sizeMB * 1024 * 1024 / 260
	if err := pg.Exec(ctx, "big", `CREATE TABLE orders (id bigint PRIMARY KEY, payload text, data jsonb)`); err != nil {
		return err
	}
	const chunk = 500000
	for lo := 1; lo <= rows; lo += chunk {
		hi := min(lo+chunk-1, rows)
		q := fmt.Sprintf(`INSERT INTO orders SELECT g, repeat(md5(g::text), 4), jsonb_build_object('n', g, 'tag', md5((g*7)::text), 'ok', g %% 2 = 0) FROM generate_series(%d, %d) g`, lo, hi)
		if err := pg.Exec(ctx, "big", q); err != nil {
			return err
		}
	}
	size, err := querySize(pg)
	if err != nil {
		return err
	}
	fmt.Printf("database size %s (%d rows) in %s\n", size, rows, time.Since(start).Round(time.Second))

	work, err := os.MkdirTemp("", "dbops-bench-backup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	stack := fmt.Sprintf(`apiVersion: dbops/v1
kind: Stack
metadata: {name: big}
spec:
  postgres: {url: "${PG_URL}"}
  backups:
    - {name: pg, source: postgres, schedule: "@daily", destination: %s/dbops, retention: {keepLast: 1}}
`, work)
	if err := os.WriteFile(filepath.Join(work, "stack.yaml"), []byte(stack), 0o644); err != nil {
		return err
	}
	env := append(os.Environ(), "PG_URL="+pg.URL("big"))
	pgDump, err := exec.LookPath("pg_dump")
	if err != nil {
		return err
	}
	var dbopsT, dumpT []time.Duration
	var peakKB int64
	for r := range rounds {
		runDbops := func() error {
			cmd := exec.Command(bin, "backup", "run", "--skip-verify", "-f", filepath.Join(work, "stack.yaml"), "big/pg")
			cmd.Env = env
			t0 := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("dbops backup run: %v\n%s", err, out)
			}
			dbopsT = append(dbopsT, time.Since(t0))
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				peakKB = max(peakKB, ru.Maxrss)
			}
			return nil
		}
		runDump := func() error {
			out := filepath.Join(work, fmt.Sprintf("plain-%d.dump", r))
			cmd := exec.Command(pgDump, "--format=custom", "--file", out, pg.URL("big"))
			t0 := time.Now()
			if o, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("pg_dump: %v\n%s", err, o)
			}
			dumpT = append(dumpT, time.Since(t0))
			return os.Remove(out)
		}
		first, second := runDbops, runDump
		if r%2 == 1 {
			first, second = runDump, runDbops
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
	}
	md, mp := median(dbopsT), median(dumpT)
	ratio := float64(md) / float64(mp)
	fmt.Printf("dbops backup   median %8.2f s   pg_dump -Fc    median %8.2f s   ratio %.3f× (aim ≤ 1.05×)   dbops peak RSS %.1f MB (aim < 50 MB)\n",
		md.Seconds(), mp.Seconds(), ratio, float64(peakKB)/1024)
	fmt.Println("  (dbops backup run --skip-verify: dump, SHA-256, fsync, rename and manifest; verification is timed separately below)")
	cmd := exec.Command(bin, "backup", "run", "-f", filepath.Join(work, "stack.yaml"), "big/pg")
	cmd.Env = env
	t0 := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("dbops backup run (verified): %v\n%s", err, out)
	}
	verified := time.Since(t0)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		fmt.Printf("dbops backup run with verify: read: %.2f s, peak RSS %.1f MB\n", verified.Seconds(), float64(ru.Maxrss)/1024)
	}
	return nil
}

func querySize(pg *testsrv.Postgres) (string, error) {
	out, err := exec.Command("psql", pg.URL("big"), "-Atc", "SELECT pg_size_pretty(pg_database_size('big'))").Output()
	return strings.TrimSpace(string(out)), err
}
