package reconcile

import (
	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/spec"
)

// describeSessions notes on the plan the timeouts the pending migrations
// will run with and how a lock timeout is retried: once for the stack, and
// on each migration whose file sets other timeouts or is NO TRANSACTION.
func describeSessions(m *spec.Migrations, status *PostgresStatus, changes []Change, retry postgres.Retry) {
	if len(changes) == 0 {
		return
	}
	stack := postgres.Session{Lock: m.Lock, Statement: m.Statement}
	status.Session = stack.String() + "; " + retry.Describe(false)
	for i := range changes {
		c := &changes[i]
		s, err := postgres.SessionOf(m, c.Name)
		if err != nil {
			continue // validated by spec; apply reports it if it changed since
		}
		noTx := postgres.NoTransaction(m, c.Name)
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
