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

	"github.com/amanat/dbops/internal/testsrv"
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
	s3, err := testsrv.StartS3(ctx)
	if err != nil {
		return fmt.Errorf("the S3 leg needs SeaweedFS weed (scripts/ensure-seaweedfs.sh): %w", err)
	}
	defer s3.Stop()
	stack := fmt.Sprintf(`apiVersion: dbops/v1
kind: Stack
metadata: {name: big}
spec:
  postgres: {url: "${PG_URL}"}
  backups:
    - {name: pg, source: postgres, schedule: "@daily", destination: %s/dbops, retention: {keepLast: 1}}
    - name: s3
      source: postgres
      schedule: "@daily"
      destination: s3://%s/bench
      s3: {endpoint: %s, region: us-east-1, pathStyle: true, accessKeyId: "${S3_KEY}", secretAccessKey: "${S3_SECRET}"}
      retention: {keepLast: 1}
`, work, s3.Bucket, s3.Endpoint)
	if err := os.WriteFile(filepath.Join(work, "stack.yaml"), []byte(stack), 0o644); err != nil {
		return err
	}
	env := append(os.Environ(), "PG_URL="+pg.URL("big"), "S3_KEY="+s3.AccessKey, "S3_SECRET="+s3.SecretKey)
	pgDump, err := exec.LookPath("pg_dump")
	if err != nil {
		return err
	}
	var dbopsT, dumpT, s3T []time.Duration
	var peakKB, s3PeakKB int64
	for r := range rounds {
		backupRun := func(job string, times *[]time.Duration, peak *int64) error {
			cmd := exec.Command(bin, "backup", "run", "--skip-verify", "-f", filepath.Join(work, "stack.yaml"), job)
			cmd.Env = env
			t0 := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("dbops backup run %s: %v\n%s", job, err, out)
			}
			*times = append(*times, time.Since(t0))
			fmt.Printf("  round %d: dbops backup run %s %.2f s\n", r+1, job, time.Since(t0).Seconds())
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				*peak = max(*peak, ru.Maxrss)
			}
			return nil
		}
		runDbops := func() error { return backupRun("big/pg", &dbopsT, &peakKB) }
		if err := backupRun("big/s3", &s3T, &s3PeakKB); err != nil {
			return err
		}
		runDump := func() error {
			out := filepath.Join(work, fmt.Sprintf("plain-%d.dump", r))
			cmd := exec.Command(pgDump, "--format=custom", "--file", out, pg.URL("big"))
			t0 := time.Now()
			if o, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("pg_dump: %v\n%s", err, o)
			}
			dumpT = append(dumpT, time.Since(t0))
			fmt.Printf("  round %d: pg_dump -Fc %.2f s\n", r+1, time.Since(t0).Seconds())
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
	ms := median(s3T)
	fmt.Printf("dbops backup to S3 (SeaweedFS on loopback) median %8.2f s   ratio to the local folder %.3f× (aim ≤ 1.1×)   peak RSS %.1f MB (aim < 100 MB)\n",
		ms.Seconds(), float64(ms)/float64(md), float64(s3PeakKB)/1024)
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
	for _, job := range []string{"big/pg", "big/s3"} {
		if job == "big/s3" { // a verified, counted backup to drill
			cmd := exec.Command(bin, "backup", "run", "-f", filepath.Join(work, "stack.yaml"), job)
			cmd.Env = env
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("dbops backup run %s (verified): %v\n%s", job, err, out)
			}
		}
		cmd := exec.Command(bin, "backup", "drill", "-f", filepath.Join(work, "stack.yaml"), job)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("dbops backup drill %s: %v\n%s", job, err, out)
		}
		fmt.Printf("%s", out)
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			fmt.Printf("  drill peak RSS %.1f MB\n", float64(ru.Maxrss)/1024)
		}
	}
	return nil
}

func querySize(pg *testsrv.Postgres) (string, error) {
	out, err := exec.Command("psql", pg.URL("big"), "-Atc", "SELECT pg_size_pretty(pg_database_size('big'))").Output()
	return strings.TrimSpace(string(out)), err
}
