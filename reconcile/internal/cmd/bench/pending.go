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

// pendingPlan compares `dbops plan` with `goose status` on a database where
// only the first applied of the generated migrations ran, so that dbops
// analyses the others for risk: wall time and peak memory (max RSS), paired
// and alternating. dbops runs twice per round: with the analysis cache of
// earlier rounds (XDG_CACHE_HOME shared by the rounds, as on a machine that
// planned before) and cold (an empty cache folder each time).
func pendingPlan(ctx context.Context, work, bin, goose string, pg *testsrv.Postgres, rd *testsrv.Redis, rounds, applied int) error {
	db := "half"
	if err := pg.CreateDatabase(ctx, db); err != nil {
		return err
	}
	if _, err := timeCmd(work, nil, goose, "-dir", "migrations", "postgres", pg.URL(db), "up-to", fmt.Sprint(applied)); err != nil {
		return err
	}
	warm := filepath.Join(work, "cache-warm")
	env := func(cache string) []string {
		return []string{"PG_URL=" + pg.URL(db), "REDIS_URL=" + rd.URL(), "XDG_CACHE_HOME=" + cache}
	}
	var warmT, coldT, statusT []time.Duration
	var warmM, coldM, statusM []int64
	for r := range rounds {
		cold, err := os.MkdirTemp(work, "cache-cold-")
		if err != nil {
			return err
		}
		runs := []func() error{
			func() error {
				d, m, err := measure(work, env(warm), bin, "plan", "stack.yaml")
				warmT, warmM = append(warmT, d), append(warmM, m)
				return err
			},
			func() error {
				d, m, err := measure(work, env(cold), bin, "plan", "stack.yaml")
				coldT, coldM = append(coldT, d), append(coldM, m)
				return err
			},
			func() error {
				d, m, err := measure(work, nil, goose, "-dir", "migrations", "postgres", pg.URL(db), "status")
				statusT, statusM = append(statusT, d), append(statusM, m)
				return err
			},
		}
		for i := range runs {
			if err := runs[(i+r)%len(runs)](); err != nil {
				return err
			}
		}
		os.RemoveAll(cold)
	}
	fmt.Printf("\nplan with %d pending (%d applied), peak memory is max RSS:\n", countPending(work, applied), applied)
	st, sm := median(statusT), medianInt(statusM)
	fmt.Printf("%-22s median %8.1f ms  %6.1f MiB\n", "goose status", ms(st), float64(sm)/1024)
	for _, x := range []struct {
		name string
		t    []time.Duration
		m    []int64
	}{{"dbops plan (cached)", warmT, warmM}, {"dbops plan (cold)", coldT, coldM}} {
		t, m := median(x.t), medianInt(x.m)
		fmt.Printf("%-22s median %8.1f ms  %6.1f MiB   time %.2f× (aim ≤ 0.8×)   memory %.2f× (aim ≤ 1.0×)\n",
			x.name, ms(t), float64(m)/1024, float64(t)/float64(st), float64(m)/float64(sm))
	}
	return nil
}

// countPending is the number of generated migrations after the first applied.
func countPending(work string, applied int) int {
	es, _ := os.ReadDir(filepath.Join(work, "migrations"))
	return len(es) - applied
}

func medianInt(v []int64) int64 {
	d := make([]time.Duration, len(v))
	for i := range v {
		d[i] = time.Duration(v[i])
	}
	return int64(median(d))
}

// measure runs bin like timeCmd and also returns its peak RSS in KiB.
func measure(dir string, env []string, bin string, args ...string) (time.Duration, int64, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		// plan exits 2 when there are changes: that is its normal answer here.
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			return 0, 0, fmt.Errorf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
		}
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss
	}
	return d, rss, nil
}
