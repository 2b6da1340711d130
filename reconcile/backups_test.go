package reconcile_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
)

func kinds(p *reconcile.Plan) map[string]int {
	out := map[string]int{}
	for _, c := range p.Stacks[0].Changes {
		out[string(c.Kind)+" "+string(c.Action)]++
	}
	return out
}

func TestBackupsPlannedTakenAndPruned(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
	dest := t.TempDir()
	stacks := load(t, f, clitest.BackupStack(dest, ""))

	p := plan(t, stacks)
	if k := kinds(p); k["backup backup"] != 2 || k["postgres.migration up"] != 3 {
		t.Fatalf("first plan: %v\n%s", k, planText(p))
	}
	if !strings.Contains(planText(p), "backup pg (postgres → "+dest+"/pg): no verified backup yet, due now") {
		t.Errorf("plan text lacks the backup job line:\n%s", planText(p))
	}
	f.Write(t, "stack.yaml", clitest.BackupStack(dest, ""))
	if res := f.Run(t, "plan", "--skip-backups", "stack.yaml"); res.Code != 0 || strings.Contains(res.Stdout, "backup pg") || !strings.Contains(res.Stdout, "0 backup change(s)") {
		t.Errorf("plan --skip-backups shows backups:\n%s%s", res.Stdout, res.Stderr)
	}
	mustApply(t, stacks, p)
	p = plan(t, stacks)
	if p.HasChanges() {
		t.Fatalf("after apply the backups are still due:\n%s", planText(p))
	}
	if b := p.Stacks[0].Backups[0]; b.LastBackup.IsZero() || b.Due || b.Next.IsZero() {
		t.Errorf("backup status after apply: %+v", b)
	}

	// A second backup of pg (taken now, whatever the schedule) makes
	// retention (keepLast: 1) delete the first; plan shows exactly that.
	res := f.Run(t, "backup", "run", "-f", "stack.yaml", "shop/pg")
	if res.Code != 0 {
		t.Fatalf("backup run: %+v", res)
	}
	files, _ := filepath.Glob(filepath.Join(dest, "pg", "shop-pg-*.dump"))
	if len(files) != 2 {
		t.Fatalf("backups on disk: %v", files)
	}
	p = plan(t, stacks)
	if k := kinds(p); len(k) != 1 || k["backup.prune delete"] != 1 {
		t.Fatalf("plan after a second backup: %v\n%s", k, planText(p))
	}
	doomed := p.Stacks[0].Changes[0].Name
	mustApply(t, stacks, p)
	if _, err := os.Stat(doomed); !os.IsNotExist(err) {
		t.Errorf("%s not deleted: %v", doomed, err)
	}
	if _, err := os.Stat(doomed[:len(doomed)-len(".dump")] + ".manifest.json"); !os.IsNotExist(err) {
		t.Errorf("manifest of %s not deleted with it", doomed)
	}
	if left, _ := filepath.Glob(filepath.Join(dest, "pg", "shop-pg-*.dump")); len(left) != 1 {
		t.Errorf("left: %v", left)
	}

	// backup list and restore through the CLI.
	res = f.Run(t, "backup", "list", "-f", "stack.yaml")
	if res.Code != 0 || strings.Count(res.Stdout, "shop/") != 2 {
		t.Errorf("backup list:\n%s%s", res.Stdout, res.Stderr)
	}
	f.Env["TARGET"] = testsrv.PostgresDB(t)
	res = f.Run(t, "restore", "-f", "stack.yaml", "shop/pg", "--to-url", f.Env["TARGET"])
	if res.Code != 0 || !strings.Contains(res.Stdout, "restored ") {
		t.Fatalf("restore into an empty database: %+v", res)
	}
	res = f.Run(t, "restore", "-f", "stack.yaml", "shop/pg", "--to-url", f.Env["TARGET"])
	if res.Code != 1 || !strings.Contains(res.Stderr, "clean") {
		t.Errorf("restore over a database with tables without --clean: %+v", res)
	}
	if res = f.Run(t, "restore", "-f", "stack.yaml", "shop/pg", "--to-url", f.Env["TARGET"], "--clean"); res.Code != 0 {
		t.Errorf("restore --clean: %+v", res)
	}
	res = f.Run(t, "restore", "-f", "stack.yaml", "shop/cache")
	if res.Code != 0 || !strings.Contains(res.Stdout, "usable RDB") || !strings.Contains(res.Stdout, "stop Redis") {
		t.Errorf("redis restore procedure: %+v", res)
	}
}

func TestBackupDestinationNotWritable(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
	// A destination under a regular file cannot be created, even by root.
	blocker := filepath.Join(t.TempDir(), "file")
	os.WriteFile(blocker, []byte("x"), 0o644)
	stacks := load(t, f, clitest.BackupStack(blocker, ""))
	p := plan(t, stacks)
	if errs := p.Stacks[0].Errors.Join("\n"); !strings.Contains(errs, blocker) {
		t.Errorf("plan errors do not name the destination %s: %s", blocker, errs)
	}
	reconcile.Apply(context.Background(), stacks, p, reconcile.Options{})
	if v := clitest.DBVersion(t, pgURL); v != 0 {
		t.Errorf("a stack with a plan error was migrated to %d", v)
	}
}

func TestBackupBeforeMigrateRefusesWhenBackupFails(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
	stacks := load(t, f, clitest.StackYAML("shop", `  postgres:
    url: ${PG_URL}
    migrations: {dir: ./migrations}
  backupBeforeMigrate: pg
  backups:
    - {name: pg, source: postgres, schedule: "@yearly", destination: `+t.TempDir()+`, retention: {keepLast: 3}}
`))
	// Taken once so it is not due: the plan then holds only the backup that
	// backupBeforeMigrate adds before the migrations.
	if res := f.Run(t, "backup", "run", "-f", "stack.yaml", "shop/pg"); res.Code != 0 {
		t.Fatalf("backup run: %+v", res)
	}
	p := plan(t, stacks)
	if k := kinds(p); k["backup backup"] != 1 || k["postgres.migration up"] != 3 {
		t.Fatalf("plan: %v\n%s", k, planText(p))
	}
	// Apply knows the guard by a field, not by its display text.
	for _, c := range p.Stacks[0].Changes {
		if c.Kind == reconcile.ResourceBackup && !c.BeforeMigrate {
			t.Errorf("backup change %s: BeforeMigrate false, want true", c.Resource)
		}
	}
	o := reconcile.Options{}
	o.Backup.PgDumpPath = "/nonexistent/pg_dump"
	res := reconcile.Apply(context.Background(), stacks, p, o)
	if !res.Failed() {
		t.Fatal("apply succeeded although the backup before migrating failed")
	}
	for _, c := range res.Stacks[0].Changes {
		switch c.Kind {
		case reconcile.ResourceMigration:
			if c.Status != reconcile.StatusFailed || !strings.Contains(c.Error, "backupBeforeMigrate job pg failed") {
				t.Errorf("migration %s: %s %q, want refused", c.Name, c.Status, c.Error)
			}
		case reconcile.ResourceBackup:
			if c.Status != reconcile.StatusFailed || !strings.Contains(c.Error, "/nonexistent/pg_dump") {
				t.Errorf("backup: %s %q", c.Status, c.Error)
			}
		}
	}
	if v := clitest.DBVersion(t, pgURL); v != 0 {
		t.Errorf("migrated to %d although the backup before migrating failed", v)
	}
	// With a working pg_dump the same plan backs up, then migrates.
	mustApply(t, stacks, plan(t, stacks))
	if v := clitest.DBVersion(t, pgURL); v != 3 {
		t.Errorf("version %d after a good backup, want 3", v)
	}
}
