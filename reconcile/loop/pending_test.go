package loop

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/amanat/dbops/internal/testsrv"
)

// TestPendingRestartInStatusAndMetrics: a postmaster setting applied by the
// loop is reported PendingRestart in /status and
// dbops_postgres_pending_restart until the server restarts; never in sync.
func TestPendingRestartInStatusAndMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg := testsrv.NewPostgres(t, testsrv.PostgresOptions{})
	r := newRepo(t)
	r.commit(map[string]string{"db.yaml": "apiVersion: dbops/v1\nkind: Stack\nmetadata:\n  name: db\nspec:\n  postgres:\n    url: " + pg.URL("postgres") +
		"\n    settings:\n      shared_preload_libraries: pg_stat_statements\n"})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)
	l.o.Reconcile.AllowRisky = true // the setting is risky: it needs a restart
	// the first cycle applies it
	cycle(t, l)
	gauge := func() string { return grep(scrape(t, l), "dbops_postgres_pending_restart{") }
	cases := []struct {
		name, state, gauge, message string
	}{
		{"after apply, before the restart", StatePendingRestart, `dbops_postgres_pending_restart{stack="db"} 1`, "pending a server restart"},
		{"after the restart", StateInSync, `dbops_postgres_pending_restart{stack="db"} 0`, "in sync"},
	}
	for i, c := range cases {
		if i == 1 {
			if err := pg.Restart(ctx); err != nil {
				t.Fatal(err)
			}
		}
		cycle(t, l)
		s, _ := stateOf(l, "db")
		if len(s.Resources) != 1 || s.Resources[0].State != c.state {
			t.Fatalf("%s: resources %+v, want postgres %s", c.name, s.Resources, c.state)
		}
		if got := gauge(); got != c.gauge {
			t.Errorf("%s: metric %q, want %q", c.name, got, c.gauge)
		}
		if len(s.Conditions) == 0 || !strings.Contains(s.Conditions[0].Message, c.message) {
			t.Errorf("%s: conditions %+v, want a message with %q", c.name, s.Conditions, c.message)
		}
	}
}
