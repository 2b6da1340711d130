package reconcile_test

import (
	"context"
	"slices"
	"testing"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/spec"
)

// goose's rows are read in insertion order whether the ledger is read with
// them or not: a later row for a version wins (goose before v3 recorded a
// down migration as a row with is_applied false).
func TestObserveLaterRowWins(t *testing.T) {
	for _, withLedger := range []bool{false, true} {
		url := testsrv.PostgresDB(t)
		db := testsrv.OpenDB(t, url)
		ctx := context.Background()
		// ids out of the order rows are listed in, as a table rewritten or
		// a sequence reset could leave them.
		if _, err := db.ExecContext(ctx, `CREATE TABLE goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp DEFAULT now());
			INSERT INTO goose_db_version (id, version_id, is_applied) VALUES (6, 3, true), (1, 0, true), (4, 2, false), (2, 1, true), (3, 2, true), (5, 3, false)`); err != nil {
			t.Fatal(err)
		}
		if withLedger {
			if _, err := db.ExecContext(ctx, `CREATE TABLE `+postgres.LedgerTable("goose_db_version")+` (version_id bigint PRIMARY KEY, file text NOT NULL, sha256 text NOT NULL, source text NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now());
				INSERT INTO `+postgres.LedgerTable("goose_db_version")+` (version_id, file, sha256, source) VALUES (1, '00001_a.sql', 'abc', 'applied')`); err != nil {
				t.Fatal(err)
			}
		}
		ro, err := postgres.Open(url, 0, true)
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		live, err := postgres.EngineFor(&spec.Migrations{Table: "goose_db_version"}).Observe(ctx, ro)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int64{1, 3}; !slices.Equal(live.Applied, want) {
			t.Errorf("ledger %v: applied %v, want %v", withLedger, live.Applied, want)
		}
		if live.LedgerExists != withLedger || (live.Ledger != nil) != withLedger {
			t.Errorf("ledger %v: LedgerExists %v, ledger read %v", withLedger, live.LedgerExists, live.Ledger != nil)
		}
		if c := live.Ledger[1]; withLedger && (c.File != "00001_a.sql" || c.SHA256 != "abc" || c.Source != "applied" || c.RecordedAt.IsZero()) {
			t.Errorf("ledger row of version 1: %+v", c)
		}
	}
}
