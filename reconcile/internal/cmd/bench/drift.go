package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/amanat/dbops/internal/testsrv"
)

// driftStack is a postgres-only stack with schema drift checks.
const driftStack = `apiVersion: dbops/v1
kind: Stack
metadata: {name: bench}
spec:
  postgres:
    url: ${PG_URL}
    migrations: {dir: ./migrations}
    drift: {scratch: same-server}
`

// benchDrift times `dbops drift` on the amanat example's migrations and on
// a generated set of n: cold (an empty cache folder: the migrations are
// replayed into a scratch database) and warm (the expected schema read from
// the cache), and samples the scratch database's size while it exists.
func benchDrift(bin string, rounds, n int) error {
	ctx := context.Background()
	bin, _ = filepath.Abs(bin)
	pg, err := testsrv.StartPostgres(ctx, testsrv.PostgresOptions{})
	if err != nil {
		return err
	}
	defer pg.Stop()
	work, err := os.MkdirTemp("", "dbops-bench-drift-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	amanat := filepath.Join(work, "amanat")
	if err := os.MkdirAll(amanat, 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-r", filepath.Join("examples", "amanat-dev", "migrations"), amanat).CombinedOutput(); err != nil {
		return fmt.Errorf("copy the amanat example: %v: %s", err, out)
	}
	generated := filepath.Join(work, "generated")
	if err := generate(generated, n); err != nil {
		return err
	}
	admin, err := sql.Open("pgx", pg.URL("postgres"))
	if err != nil {
		return err
	}
	defer admin.Close()

	var version string
	var empty int64
	if err := pg.CreateDatabase(ctx, "drift_empty"); err != nil {
		return err
	}
	if err := admin.QueryRowContext(ctx, "SELECT current_setting('server_version'), pg_database_size('drift_empty')").Scan(&version, &empty); err != nil {
		return err
	}
	fmt.Printf("dbops drift, %d rounds, PostgreSQL %s on 127.0.0.1:%d (an empty database is %s); cold: empty cache folder (replay into a scratch database), warm: expected schema from the cache\n\n",
		rounds, version, pg.Port, humanMB(empty))
	sets := []struct{ name, dir string }{{"amanat example", amanat}, {fmt.Sprintf("%d generated", n), generated}}
	for i, set := range sets {
		if err := os.WriteFile(filepath.Join(set.dir, "stack.yaml"), []byte(driftStack), 0o644); err != nil {
			return err
		}
		db := fmt.Sprintf("drift_%d", i)
		if err := pg.CreateDatabase(ctx, db); err != nil {
			return err
		}
		env := []string{"PG_URL=" + pg.URL(db)}
		// apply's plan checks drift too: its cache goes below work, not the user's.
		if _, err := timeCmd(set.dir, append(env, "XDG_CACHE_HOME="+filepath.Join(work, "cache-apply")), bin, "apply", "--auto-approve", "stack.yaml"); err != nil {
			return err
		}
		var migrated int64
		if err := admin.QueryRowContext(ctx, "SELECT pg_database_size($1)", db).Scan(&migrated); err != nil {
			return err
		}
		var cold, warm, coldIn, warmIn []time.Duration
		var objects int
		var scratchMax int64
		for r := range rounds {
			cache := filepath.Join(work, fmt.Sprintf("cache-%d-%d", i, r))
			cenv := append(env, "XDG_CACHE_HOME="+cache)
			stop := sampleScratch(admin, &scratchMax)
			d, rep, err := timeDrift(set.dir, cenv, bin)
			stop()
			if err != nil {
				return err
			}
			if rep.Expected != "scratch" {
				return fmt.Errorf("%s: a cold check read the cache", set.name)
			}
			cold, coldIn, objects = append(cold, d), append(coldIn, time.Duration(rep.ElapsedMS)*time.Millisecond), rep.Objects
			d, rep, err = timeDrift(set.dir, cenv, bin)
			if err != nil {
				return err
			}
			if rep.Expected != "cache" {
				return fmt.Errorf("%s: a warm check did not read the cache", set.name)
			}
			warm, warmIn = append(warm, d), append(warmIn, time.Duration(rep.ElapsedMS)*time.Millisecond)
		}
		fmt.Printf("%-16s %5d objects   cold median %8.1f ms (check %8.1f ms)   warm median %8.1f ms (check %8.1f ms)\n",
			set.name, objects, ms(median(cold)), ms(median(coldIn)), ms(median(warm)), ms(median(warmIn)))
		fmt.Printf("%-16s scratch database: largest sampled %s; a freshly migrated database is %s\n", "",
			humanMB(scratchMax), humanMB(migrated))
	}
	fmt.Println("\n(wall time includes starting the dbops process; \"check\" is the report's elapsedMs)")
	return nil
}

type driftReport struct {
	Items     []json.RawMessage `json:"items"`
	Objects   int               `json:"objects"`
	ElapsedMS int64             `json:"elapsedMs"`
	Expected  string            `json:"expected"`
}

// timeDrift runs one `dbops drift --format json` that must find no drift.
func timeDrift(dir string, env []string, bin string) (time.Duration, driftReport, error) {
	cmd := exec.Command(bin, "drift", "--format", "json", "bench", "stack.yaml")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.Output()
	d := time.Since(start)
	var rep driftReport
	if err != nil {
		return 0, rep, fmt.Errorf("dbops drift: %v\n%s", err, out)
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		return 0, rep, fmt.Errorf("dbops drift JSON: %v\n%s", err, out)
	}
	if len(rep.Items) > 0 {
		return 0, rep, fmt.Errorf("drift right after apply: %s", out)
	}
	return d, rep, nil
}

// sampleScratch records the largest dbops_drift_ database seen until stop.
func sampleScratch(admin *sql.DB, max *int64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			var size sql.NullInt64
			// A database being created or dropped may not answer: skip it.
			_ = admin.QueryRow(`SELECT max(pg_database_size(oid)) FROM pg_database WHERE datname LIKE 'dbops\_drift\_%' AND datallowconn`).Scan(&size)
			if size.Valid && size.Int64 > *max {
				*max = size.Int64
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func humanMB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
