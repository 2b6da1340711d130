package reconcile_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/reconcile/render"
)

// dbops applies exactly the planned versions (goose's ApplyVersion, not
// UpTo, which checked the order itself): a plan made stale by a later
// version applied meanwhile is refused before anything runs, as goose would
// refuse it, and a fresh plan says why.
func TestApplyRefusesVersionsBelowLive(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	f := clitest.NewFixture(t, map[string]string{
		"00001_a.sql": clitest.Mig("CREATE TABLE a (id int);", "DROP TABLE a;"),
		"00002_b.sql": clitest.Mig("CREATE TABLE b (id int);", "DROP TABLE b;"),
		"00003_c.sql": clitest.Mig("CREATE TABLE c (id int);", "DROP TABLE c;"),
	})
	f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
	stacks := load(t, f, clitest.CLIStack)
	stale := plan(t, stacks)

	db := testsrv.OpenDB(t, pgURL)
	p, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS(filepath.Join(f.Dir, "migrations")),
		goose.WithDisableGlobalRegistry(true), goose.WithAllowOutofOrder(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ApplyVersion(context.Background(), 3, true); err != nil {
		t.Fatal(err)
	}

	res := reconcile.Apply(context.Background(), stacks, stale, reconcile.Options{})
	var b strings.Builder
	render.ResultText(&b, res, render.Style{})
	if !res.Failed() || !strings.Contains(b.String(), "00001_a.sql (version 1) is not applied but goose_db_version is at version 3 now: plan again") {
		t.Fatalf("apply of a stale plan below the live version: failed %v\n%s", res.Failed(), b.String())
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM goose_db_version WHERE version_id IN (1, 2)").Scan(&n); err != nil || n != 0 {
		t.Errorf("versions 1 and 2 recorded after the refused apply: %d, %v", n, err)
	}
}

// goose's migration lock is held once for a batch of migrations, by one
// session of its own, as `goose up` holds it, rather than taken and given
// back around each one (two round trips per migration): every migration of
// the batch sees the same other session holding it.
func TestGooseLockHeldForTheBatch(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	// Each migration records who holds goose's one-key advisory lock
	// (classid 0, objid the key) and whether that is its own session.
	record := `INSERT INTO lock_seen SELECT %d, pid, pid = pg_backend_pid() FROM pg_locks
		WHERE locktype = 'advisory' AND classid = 0 AND objid = (` + strconv.FormatInt(postgres.LockID, 10) + ` & 4294967295)::oid AND granted;`
	f := clitest.NewFixture(t, map[string]string{
		"00001_a.sql": clitest.Mig("CREATE TABLE lock_seen (version int, pid int, own boolean); "+fmt.Sprintf(record, 1), "DROP TABLE lock_seen;"),
		"00002_b.sql": clitest.Mig(fmt.Sprintf(record, 2), "SELECT 1;"),
		"00003_c.sql": clitest.Mig(fmt.Sprintf(record, 3), "SELECT 1;"),
	})
	f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
	stacks := load(t, f, clitest.CLIStack)
	res := reconcile.Apply(context.Background(), stacks, plan(t, stacks), reconcile.Options{})
	if res.Failed() {
		var b strings.Builder
		render.ResultText(&b, res, render.Style{})
		t.Fatalf("apply:\n%s", b.String())
	}
	db := testsrv.OpenDB(t, pgURL)
	var versions, holders, own int
	if err := db.QueryRow("SELECT count(DISTINCT version), count(DISTINCT pid), count(*) FILTER (WHERE own) FROM lock_seen").Scan(&versions, &holders, &own); err != nil {
		t.Fatal(err)
	}
	if versions != 3 || holders != 1 || own != 0 {
		t.Errorf("goose's lock seen by %d of 3 migrations, held by %d session(s), by the migration's own session %d time(s); want 3, 1 and 0", versions, holders, own)
	}
}
