package reconcile

import (
	"slices"

	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/spec"
)

// describeSessions notes on the plan the timeouts the pending migrations
// will run with and how a lock timeout is retried: once for the stack, and
// on each migration whose file sets other timeouts or is NO TRANSACTION
// (goose only: drizzle runs every migration of an apply in one transaction,
// retried as a whole).
func describeSessions(eng postgres.Engine, m *spec.Migrations, status *PostgresStatus, changes []Change, retry postgres.Retry) {
	runs := func(c Change) bool { return c.Kind == ResourceMigration && c.Action != ActionBaseline }
	if !slices.ContainsFunc(changes, runs) {
		return
	}
	drizzle := m.Format == spec.FormatDrizzle
	stack := postgres.Session{Lock: m.Lock, Statement: m.Statement}
	status.Session = stack.String() + "; " + retry.Describe(false)
	if drizzle {
		status.Session += " (one transaction for all: retried as a whole)"
	}
	for i := range changes {
		c := &changes[i]
		if !runs(*c) {
			continue
		}
		file := eng.File(postgres.Step{Version: c.Version, File: c.Name, Name: c.Name})
		s, err := postgres.SessionOf(m, file)
		if err != nil {
			continue // validated by spec; apply reports it if it changed since
		}
		noTx := !drizzle && postgres.NoTransaction(m, file)
		switch {
		case s != stack && noTx:
			c.Session = s.String() + "; " + retry.Describe(true)
		case s != stack:
			c.Session = s.String()
		case noTx:
			c.Session = retry.Describe(true)
		}
	}
}
