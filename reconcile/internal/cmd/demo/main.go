// Command demo runs dbops against throwaway local servers: it starts
// PostgreSQL and Redis, runs validate, plan, apply and plan again on a stack
// folder, then stops the servers. `make demo` runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/amanat/dbops/internal/testsrv"
)

func main() {
	bin := flag.String("dbops", "bin/dbops", "the dbops binary")
	flag.Parse()
	dir := flag.Arg(0)
	if dir == "" {
		dir = "examples/amanat-dev"
	}
	if err := run(*bin, dir); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(bin, dir string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	banner("starting throwaway PostgreSQL and Redis")
	pg, err := testsrv.StartPostgres(ctx, testsrv.PostgresOptions{})
	if err != nil {
		return err
	}
	defer pg.Stop()
	if err := pg.CreateDatabase(ctx, "amanat_dev"); err != nil {
		return err
	}
	// Started from a config file, so dbops can persist with CONFIG REWRITE.
	rd, err := testsrv.StartRedis(ctx, testsrv.RedisOptions{ConfigFile: true})
	if err != nil {
		return err
	}
	defer rd.Stop()
	fmt.Printf("PostgreSQL on 127.0.0.1:%d, Redis on 127.0.0.1:%d (config file %s)\n", pg.Port, rd.Port, rd.ConfFile)

	env := append(os.Environ(), "PG_URL="+pg.URL("amanat_dev"), "REDIS_URL="+rd.URL())
	steps := []struct {
		title string
		args  []string
		want  int
	}{
		{"dbops validate (offline)", []string{"validate", dir}, 0},
		{"dbops plan", []string{"plan", dir}, 0},
		{"dbops apply --auto-approve", []string{"apply", "--auto-approve", dir}, 0},
		{"dbops plan --detailed-exitcode (expect no changes, exit 0)", []string{"plan", "--detailed-exitcode", dir}, 0},
	}
	for _, s := range steps {
		banner(s.title)
		cmd := exec.CommandContext(ctx, bin, s.args...)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, os.Stdout, os.Stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			return err
		}
		if code != s.want {
			return fmt.Errorf("%s exited %d, want %d", strings.Join(s.args, " "), code, s.want)
		}
	}
	banner("stopping the servers")
	return nil
}

func banner(s string) { fmt.Printf("\n==> %s\n", s) }
