package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile/postgres"
)

// An apply that waited for goose's migration lock while another process
// ran its migrations says why it skipped them.
func TestWaitingApplySaysWhySkipped(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	f.Env["PG_URL"] = pgURL
	f.Write(t, "stack.yaml", clitest.StackYAML("shop", clitest.PGMigrations))

	holder := clitest.Monitor(t, pgURL)
	ctx := context.Background()
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_lock($1)", postgres.LockID); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(clitest.Dbops(t), "apply", "--auto-approve", "stack.yaml")
	cmd.Dir = f.Dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "PG_URL=" + pgURL}
	var out testsrv.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	eventually(t, "apply waiting for the migration lock", func() bool {
		var n int
		clitest.QueryRow(t, holder, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND application_name = 'dbops' AND query ILIKE '%pg_try_advisory_lock%'`, nil, &n)
		return n > 0 && strings.Contains(out.String(), "00003")
	})

	// "Another process": goose itself, without the lock this test holds.
	db := testsrv.OpenDB(t, pgURL)
	p, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS(filepath.Join(f.Dir, "migrations")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_unlock($1)", postgres.LockID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("apply still waiting:\n%s", out.String())
	}
	text := out.String()
	if n := strings.Count(text, "already applied by another process while waiting for the migration lock"); n != 3 {
		t.Errorf("skipped migrations do not say why (%d of 3):\n%s", n, text)
	}
}
