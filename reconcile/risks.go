package reconcile

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/reconcile/redis"
	"github.com/amanat/dbops/reconcile/risk"
	"github.com/amanat/dbops/spec"
)

// Outcomes of risky changes that were not applied.
const (
	// StatusDeferred: risky, outside the stack's maintenance windows; it is
	// applied when a window opens. Not a failure.
	StatusDeferred = "deferred"
	// StatusRefused: risky, and the stack has no maintenance window; it
	// needs --allow-risky. A failure.
	StatusRefused = "refused"
)

// riskParams are read for Redis risk checks even when not managed.
var riskParams = []string{"maxmemory", "maxmemory-policy", "appendonly"}

// migrationRisks marks the risky migrations among changes. Each pending
// migration's SQL (eng.UpSQL: goose's Up section, drizzle's statements
// between breakpoints) is judged, in order, against the live database
// (read-only catalog queries) and what the migrations before it in the plan
// create, rename and drop: see risk.Sequence. A baseline runs nothing.
func migrationRisks(ctx context.Context, db *sql.DB, eng postgres.Engine, changes []Change, threshold int64) {
	seq := risk.NewSequence(newLiveCatalog(ctx, db), threshold)
	for i := range changes {
		c := &changes[i]
		if c.Action == ActionDown {
			c.Risk = risk.Down(c.Name).Reason
			continue
		}
		if c.Action == ActionBaseline {
			continue // runs nothing
		}
		sqlText, err := eng.UpSQL(postgres.Step{Version: c.Version, File: c.Name, Name: c.Name})
		var findings []risk.Finding
		if err == nil {
			findings, err = seq.Migration(sqlText)
		}
		if errors.Is(err, risk.ErrNoParser) {
			c.Risk = "cannot analyse: this dbops was built without cgo (no SQL parser)"
			continue
		}
		var pg18 *risk.PG18SyntaxError
		if errors.As(err, &pg18) {
			c.Risk = pg18.Error() // "cannot analyse (PostgreSQL 18 syntax ...)"
			continue
		}
		if err != nil {
			c.Risk = "cannot analyse: " + err.Error()
			continue
		}
		c.Risk = reasons(findings)
	}
}

// redisRisks marks the risky Redis settings among changes.
func redisRisks(live redis.State, changes []Change) {
	desired := map[string]string{}
	for _, c := range changes {
		if c.Kind == ResourceRedisConfig {
			desired[c.Name], _ = spec.NormalizeRedis(c.Name, c.After)
		}
	}
	maxmem, _ := spec.ParseMemory(live.Values["maxmemory"])
	found := risk.RedisSet(desired, risk.RedisLive{
		UsedMemory: live.UsedMemory, MaxMemory: maxmem,
		Policy: live.Values["maxmemory-policy"], AppendOnly: live.Values["appendonly"],
	})
	for i := range changes {
		if f := found[changes[i].Name]; changes[i].Kind == ResourceRedisConfig && len(f) > 0 {
			changes[i].Risk = reasons(f)
		}
	}
}

func reasons(fs []risk.Finding) string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Reason
	}
	return strings.Join(out, "; ")
}

// windowState says whether risky changes of a stack may go ahead at now.
type windowState struct {
	has, open bool
	next      time.Time
}

func windowsAt(st *spec.Stack, now time.Time) windowState {
	if len(st.Spec.MaintenanceWindows) == 0 {
		return windowState{}
	}
	open, _, next := st.Spec.MaintenanceWindows.Open(now)
	return windowState{has: true, open: open, next: next}
}

// deferRisky notes, on a plan, when its risky changes will be applied.
func deferRisky(sp *StackPlan, st *spec.Stack, o Options) {
	w := windowsAt(st, o.now())
	risky := 0
	for i := range sp.Changes {
		c := &sp.Changes[i]
		if c.Risk == "" || o.AllowRisky || w.open {
			continue
		}
		risky++
		if w.has {
			c.Deferred = fmt.Sprintf("until %s (next maintenance window)", w.next.Format(time.RFC3339))
		}
	}
	if risky > 0 && !w.has {
		sp.Warnings = append(sp.Warnings, fmt.Sprintf("%d risky change(s): apply refuses them without --allow-risky, as the stack has no maintenance window", risky))
	}
}

// gate splits changes into those apply may make now and those it holds
// back: risky ones outside a window, and migrations after a held one (they
// must run in order).
func gate(st *spec.Stack, changes []Change, o Options) (now []Change, held []ChangeResult) {
	w := windowsAt(st, o.now())
	if o.AllowRisky || w.open {
		return changes, nil
	}
	status, why := StatusRefused, "risky: needs --allow-risky or a maintenance window"
	if w.has {
		status, why = StatusDeferred, fmt.Sprintf("risky: deferred until the next maintenance window at %s", w.next.Format(time.RFC3339))
	}
	blocked := ""
	for _, c := range changes {
		switch {
		case c.Risk != "":
			held = append(held, ChangeResult{Change: c, Status: status, Error: why + " (" + c.Risk + ")"})
			if c.Kind == ResourceMigration && blocked == "" {
				blocked = c.Name
			}
		case c.Kind == ResourceMigration && blocked != "":
			held = append(held, ChangeResult{Change: c, Status: status, Error: "waits for " + blocked + ", a risky migration before it"})
		default:
			now = append(now, c)
		}
	}
	return now, held
}
