package reconcile_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/postgres"
)

// drizzle migrations run with the stack's statement_timeout, or their
// file's; a timeout rolls back drizzle's one transaction.
func TestDrizzleStatementTimeout(t *testing.T) {
	testsrv.Servers(t)
	tests := []struct {
		name, stack, annotation string
		wantErr                 string // "" for applied
	}{
		{name: "default off"},
		{name: "stack", stack: ", statementTimeout: 100ms", wantErr: "SQLSTATE 57014"},
		{name: "file overrides stack", stack: ", statementTimeout: 100ms", annotation: "-- dbops:statement-timeout 0\n"},
		{name: "file only", annotation: "-- dbops:statement-timeout 100ms\n", wantErr: "SQLSTATE 57014"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := drizzleFixture(t, "0000_a", "CREATE TABLE a (id int);",
				"0001_slow", tt.annotation+"CREATE TABLE slow (id int);\n--> statement-breakpoint\nSELECT pg_sleep(0.5);")
			url := testsrv.PostgresDB(t)
			f.Env["PG_URL"] = url
			stacks := load(t, f, clitest.StackYAML("s", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: ./migrations"+tt.stack+"}\n"))
			res := reconcile.Apply(context.Background(), stacks, plan(t, stacks), reconcile.Options{})
			got := map[string]reconcile.ChangeResult{}
			for _, c := range res.Stacks[0].Changes {
				got[c.Name] = c
			}
			slow := got["0001_slow"]
			switch {
			case tt.wantErr == "" && (slow.Status != reconcile.StatusDone || got["0000_a"].Status != reconcile.StatusDone):
				t.Errorf("0001_slow %s: %s", slow.Status, slow.Error)
			case tt.wantErr != "" && (slow.Status != reconcile.StatusFailed || !strings.Contains(slow.Error, tt.wantErr) || slow.Retries != 0):
				t.Errorf("0001_slow %s after %d retries: %q, want failed with %s, not retried", slow.Status, slow.Retries, slow.Error, tt.wantErr)
			case tt.wantErr != "" && got["0000_a"].Status == reconcile.StatusDone:
				t.Errorf("0000_a done, but drizzle's one transaction failed")
			}
			var a bool
			if err := testsrv.OpenDB(t, url).QueryRow("SELECT to_regclass('a') IS NOT NULL").Scan(&a); err != nil || a != (tt.wantErr == "") {
				t.Errorf("table a exists %v (%v): the transaction should be all or nothing", a, err)
			}
		})
	}
}

// A drizzle migration waiting for a lock gives up after lock_timeout; the
// whole transaction is retried, a bounded number of times.
func TestDrizzleLockTimeoutAndRetry(t *testing.T) {
	testsrv.Servers(t)
	f := drizzleFixture(t, "0000_accounts", "CREATE TABLE accounts (id int PRIMARY KEY);\n--> statement-breakpoint\nINSERT INTO accounts VALUES (1);",
		"0001_note", "CREATE TABLE notes (id int);\n--> statement-breakpoint\nALTER TABLE accounts ADD COLUMN note text;")
	url := testsrv.PostgresDB(t)
	f.Env["PG_URL"] = url
	yaml := func(extra string) string {
		return clitest.StackYAML("s", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: ./migrations"+extra+"}\n")
	}
	stacks := load(t, f, yaml(`, target: "0000_accounts"`))
	mustApply(t, stacks, plan(t, stacks))
	db := testsrv.OpenDB(t, url)
	rows := func() int {
		t.Helper()
		var n int
		if err := db.QueryRow("SELECT count(*) FROM drizzle.__drizzle_migrations").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	note := func(res *reconcile.Result) reconcile.ChangeResult {
		t.Helper()
		for _, c := range res.Stacks[0].Changes {
			if c.Name == "0001_note" {
				return c
			}
		}
		t.Fatalf("0001_note not in the result: %+v", res.Stacks[0].Changes)
		return reconcile.ChangeResult{}
	}

	t.Run("held throughout: bounded retries, then a clear failure", func(t *testing.T) {
		stacks := load(t, f, yaml(", lockTimeout: 200ms"))
		fast := reconcile.Options{LockRetry: postgres.Retry{Max: 2, Backoff: 10 * time.Millisecond}}
		tx := blocker(t, db, "SELECT * FROM accounts")
		p := reconcile.PlanStacks(context.Background(), stacks, fast)
		if txt := planText(p); !strings.Contains(txt, "migrations run with lock_timeout 200ms, statement_timeout off; retried up to 2 times on lock timeout (one transaction for all: retried as a whole)") {
			t.Errorf("plan does not say how drizzle migrations are retried:\n%s", txt)
		}
		c := note(reconcile.Apply(context.Background(), stacks, p, fast))
		if c.Status != reconcile.StatusFailed || c.Retries != 2 || !strings.Contains(c.Error, "SQLSTATE 55P03") || !strings.Contains(c.Error, "gave up after 2 retries") {
			t.Errorf("0001_note: %s, %d retries, %q; want failed after 2 retries on 55P03", c.Status, c.Retries, c.Error)
		}
		if n := rows(); n != 1 {
			t.Errorf("%d drizzle rows, want 1", n)
		}
		var notes bool
		if err := db.QueryRow("SELECT to_regclass('notes') IS NOT NULL").Scan(&notes); err != nil || notes {
			t.Errorf("notes exists (%v): the failed transaction was not rolled back", err)
		}
		if _, err := tx.Exec("SELECT 1"); err != nil {
			t.Errorf("the blocking transaction was disturbed: %v", err)
		}
	})

	t.Run("released during the retries: applied", func(t *testing.T) {
		stacks := load(t, f, yaml(", lockTimeout: 1s"))
		o := reconcile.Options{LockRetry: postgres.Retry{Max: 5, Backoff: 10 * time.Millisecond}}
		tx := blocker(t, db, "SELECT * FROM accounts")
		done := make(chan *reconcile.Result)
		go func() {
			done <- reconcile.Apply(context.Background(), stacks, reconcile.PlanStacks(context.Background(), stacks, o), o)
		}()
		first := waitingXact(t, db, "")
		waitingXact(t, db, first) // the first attempt timed out; a retry waits
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		if c := note(<-done); c.Status != reconcile.StatusDone || c.Retries < 1 {
			t.Fatalf("0001_note: %s after %d retries (%s), want done after at least one", c.Status, c.Retries, c.Error)
		}
		if n := rows(); n != 2 {
			t.Errorf("%d drizzle rows, want 2", n)
		}
	})

	t.Run("repair refuses a drizzle stack", func(t *testing.T) {
		_, err := reconcile.Repair(context.Background(), &stacks[0], reconcile.Options{})
		if err == nil || !strings.Contains(err.Error(), "keep their own hashes") {
			t.Errorf("repair of a drizzle stack: %v, want refused", err)
		}
		var ledger bool
		if err := db.QueryRow("SELECT to_regclass('drizzle.__drizzle_migrations_dbops_checksums') IS NOT NULL OR to_regclass('__drizzle_migrations_dbops_checksums') IS NOT NULL").Scan(&ledger); err != nil || ledger {
			t.Errorf("a goose checksum ledger was created for a drizzle stack (%v)", err)
		}
	})
}

// Risk of drizzle migrations is judged against the live database, in
// order, on the statements drizzle sends (split on breakpoints; a
// statement before a breakpoint need not end with a semicolon).
func TestDrizzleRiskAgainstLiveDatabase(t *testing.T) {
	testsrv.Servers(t)
	f := drizzleFixture(t,
		"0000_init", "CREATE TABLE full_t (id int)\n--> statement-breakpoint\nINSERT INTO full_t VALUES (1)\n--> statement-breakpoint\nCREATE TABLE empty_t (id int)",
		"0001_scratch", "CREATE TABLE scratch (id int)\n--> statement-breakpoint\nDROP TABLE scratch",
		"0002_drop_empty", "DROP TABLE empty_t;",
		"0003_rename", "ALTER TABLE full_t RENAME TO kept",
		"0004_drop_kept", "-- dbops:lock-timeout 2s\nDROP TABLE kept;",
	)
	url := testsrv.PostgresDB(t)
	f.Env["PG_URL"] = url
	yaml := func(extra string) string {
		return clitest.StackYAML("s", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: ./migrations"+extra+"}\n")
	}
	stacks := load(t, f, yaml(`, target: "0000_init"`))
	mustApply(t, stacks, plan(t, stacks))
	p := plan(t, load(t, f, yaml("")))
	tests := []struct {
		tag, risk, session string // risk: "" not risky, else a part of the reason
	}{
		{tag: "0001_scratch"},
		{tag: "0002_drop_empty"},
		{tag: "0003_rename"},
		{tag: "0004_drop_kept", risk: "DROP TABLE kept", session: "lock_timeout 2s, statement_timeout off"},
	}
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			c, ok := riskOf(p, "postgres.migration."+tt.tag)
			switch {
			case !ok:
				t.Fatalf("%s not planned:\n%s", tt.tag, planText(p))
			case tt.risk == "" && c.Risk != "":
				t.Errorf("risk %q, want none", c.Risk)
			case tt.risk != "" && !strings.Contains(c.Risk, tt.risk):
				t.Errorf("risk %q, want %q", c.Risk, tt.risk)
			}
			if c.Session != tt.session {
				t.Errorf("session %q, want %q", c.Session, tt.session)
			}
		})
	}
}
