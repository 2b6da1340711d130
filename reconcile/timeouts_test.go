package reconcile_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/reconcile/render"
)

// blocker is a transaction the test holds open on a table, as a long
// report or a forgotten psql session would.
func blocker(t *testing.T, db *sql.DB, lock string) *sql.Tx {
	t.Helper()
	tx, err := db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	if _, err := tx.Exec(lock); err != nil {
		t.Fatal(err)
	}
	return tx
}

// waitingXact returns the start of the transaction of a dbops session of
// this database that waits for a lock, other than not; "" until one does.
func waitingXact(t *testing.T, db *sql.DB, not string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var start string
		err := db.QueryRow(`SELECT xact_start::text FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'dbops' AND wait_event_type = 'Lock'
			AND xact_start::text <> $1`, not).Scan(&start)
		if err == nil {
			return start
		}
		if err != sql.ErrNoRows {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no dbops session waited for a lock within a minute")
	return ""
}

// A migration waiting behind a transaction gives up after lock_timeout
// instead of queueing every query behind it; its transaction is retried a
// bounded number of times, a NO TRANSACTION one never.
func TestLockTimeoutAndRetry(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	f := clitest.NewFixture(t, map[string]string{
		"00001_accounts.sql": clitest.Mig("CREATE TABLE accounts (id int PRIMARY KEY);\nINSERT INTO accounts VALUES (1);", "DROP TABLE accounts;"),
	})
	f.Env["PG_URL"] = pgURL
	yaml := func(lock string) string {
		return clitest.StackYAML("s", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: ./migrations, lockTimeout: "+lock+"}\n")
	}
	stacks := load(t, f, yaml("200ms"))
	mustApply(t, stacks, plan(t, stacks))
	db := testsrv.OpenDB(t, pgURL)
	fast := reconcile.Options{LockRetry: postgres.Retry{Max: 2, Backoff: 10 * time.Millisecond}}
	migration := func(res *reconcile.Result, version int64) reconcile.ChangeResult {
		t.Helper()
		for _, c := range res.Stacks[0].Changes {
			if c.Version == version {
				return c
			}
		}
		t.Fatalf("migration %d not in the result: %+v", version, res.Stacks[0].Changes)
		return reconcile.ChangeResult{}
	}

	f.Write(t, "migrations/00002_note.sql", clitest.Mig("ALTER TABLE accounts ADD COLUMN note text;", "ALTER TABLE accounts DROP COLUMN note;"))
	stacks = load(t, f, yaml("200ms"))

	t.Run("held throughout: bounded retries, then a clear failure", func(t *testing.T) {
		tx := blocker(t, db, "SELECT * FROM accounts") // ACCESS SHARE, until rollback
		p := reconcile.PlanStacks(context.Background(), stacks, fast)
		if txt := planText(p); !strings.Contains(txt, "migrations run with lock_timeout 200ms, statement_timeout off; retried up to 2 times on lock timeout") {
			t.Errorf("plan does not say how migrations are retried:\n%s", txt)
		}
		res := reconcile.Apply(context.Background(), stacks, p, fast)
		c := migration(res, 2)
		if c.Status != reconcile.StatusFailed || c.Retries != 2 || !strings.Contains(c.Error, "SQLSTATE 55P03") ||
			!strings.Contains(c.Error, "gave up after 2 retries") {
			t.Errorf("migration 2: %s, %d retries, %q; want failed after 2 retries on 55P03", c.Status, c.Retries, c.Error)
		}
		var out strings.Builder
		render.ResultText(&out, res, render.Style{})
		t.Logf("plan:\n%s\napply:\n%s", planText(p), out.String())
		if !strings.Contains(out.String(), "up 00002_note.sql (retried 2× after lock timeout)") {
			t.Errorf("result does not say what was retried:\n%s", out.String())
		}
		if v := clitest.DBVersion(t, pgURL); v != 1 {
			t.Errorf("version %d, want 1", v)
		}
		if _, err := tx.Exec("SELECT 1"); err != nil {
			t.Errorf("the blocking transaction was disturbed: %v", err)
		}
	})

	t.Run("released during the retries: applied", func(t *testing.T) {
		stacks := load(t, f, yaml("1s"))
		tx := blocker(t, db, "SELECT * FROM accounts")
		done := make(chan *reconcile.Result)
		o := reconcile.Options{LockRetry: postgres.Retry{Max: 5, Backoff: 10 * time.Millisecond}}
		go func() {
			done <- reconcile.Apply(context.Background(), stacks, reconcile.PlanStacks(context.Background(), stacks, o), o)
		}()
		first := waitingXact(t, db, "")
		waitingXact(t, db, first) // the first attempt timed out; a retry waits
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		res := <-done
		if c := migration(res, 2); c.Status != reconcile.StatusDone || c.Retries < 1 {
			t.Fatalf("migration 2: %s after %d retries (%s), want done after at least one", c.Status, c.Retries, c.Error)
		}
		if v := clitest.DBVersion(t, pgURL); v != 2 {
			t.Errorf("version %d, want 2", v)
		}
	})

	t.Run("NO TRANSACTION with CONCURRENTLY: never retried", func(t *testing.T) {
		f.Write(t, "migrations/00003_idx.sql", "-- +goose NO TRANSACTION\n-- dbops:lock-timeout 300ms\n"+
			clitest.Mig("CREATE INDEX CONCURRENTLY accounts_note_idx ON accounts (note);", "DROP INDEX CONCURRENTLY accounts_note_idx;"))
		stacks := load(t, f, yaml("200ms"))
		blocker(t, db, "LOCK TABLE accounts IN SHARE UPDATE EXCLUSIVE MODE")
		p := reconcile.PlanStacks(context.Background(), stacks, fast)
		if txt := planText(p); !strings.Contains(txt, "00003_idx.sql  [lock_timeout 300ms, statement_timeout off; NO TRANSACTION: not retried") {
			t.Errorf("plan does not show the file's timeout and that it is not retried:\n%s", txt)
		}
		res := reconcile.Apply(context.Background(), stacks, p, fast)
		c := migration(res, 3)
		if c.Status != reconcile.StatusFailed || c.Retries != 0 || !strings.Contains(c.Error, "not retried: a NO TRANSACTION migration") {
			t.Errorf("migration 3: %s, %d retries, %q; want failed, not retried", c.Status, c.Retries, c.Error)
		}
	})
}

// statement_timeout comes from the stack, and a file's annotation wins.
func TestStatementTimeout(t *testing.T) {
	tests := []struct {
		name, stack, annotation string
		wantErr                 string // "" for applied
	}{
		{name: "default off", wantErr: ""},
		{name: "stack", stack: ", statementTimeout: 100ms", wantErr: "SQLSTATE 57014"},
		{name: "file overrides stack", stack: ", statementTimeout: 100ms", annotation: "-- dbops:statement-timeout 0\n"},
		{name: "file only", annotation: "-- dbops:statement-timeout 100ms\n", wantErr: "SQLSTATE 57014"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pgURL := testsrv.PostgresDB(t)
			f := clitest.NewFixture(t, map[string]string{"00001_slow.sql": tt.annotation + clitest.Mig("CREATE TABLE slow (id int);\nSELECT pg_sleep(0.5);", "DROP TABLE slow;")})
			f.Env["PG_URL"] = pgURL
			stacks := load(t, f, clitest.StackYAML("s", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: ./migrations"+tt.stack+"}\n"))
			res := reconcile.Apply(context.Background(), stacks, plan(t, stacks), reconcile.Options{})
			c := res.Stacks[0].Changes[0]
			switch {
			case tt.wantErr == "" && c.Status != reconcile.StatusDone:
				t.Errorf("%s: %s", c.Status, c.Error)
			case tt.wantErr != "" && (c.Status != reconcile.StatusFailed || !strings.Contains(c.Error, tt.wantErr) || c.Retries != 0):
				t.Errorf("%s after %d retries: %q, want failed with %s, not retried", c.Status, c.Retries, c.Error, tt.wantErr)
			}
		})
	}
}
