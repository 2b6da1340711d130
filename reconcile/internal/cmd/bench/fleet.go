package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/amanat/dbops/reconcile/internal/testsrv"
)

// benchPool runs only the 100-stack in-process cycle of -only run.
func benchPool(rounds int) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "dbops-bench-pool-")
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
	return benchFleet(ctx, filepath.Join(work), pg, rds, rounds)
}

func benchFleet1000(bin string, stacks, rounds int) error {
	return fmt.Errorf("not yet")
}
