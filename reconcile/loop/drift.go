package loop

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/drift"
	"github.com/amanat/dbops/reconcile/notify"
	"github.com/amanat/dbops/spec"
)

// Schema drift in dbops run: each stack with spec.postgres.drift is checked
// on its own schedule (drift.interval, default 1h), never as part of a
// reconcile cycle: a check replays the applied migrations into a scratch
// database when the expected schema is not in the loop's memory cache.
// Receivers hear of it on changes of state only.

// driftRetry bounds the wait after a check that failed (a server down, the
// level moving under an apply): sooner than a whole interval.
const driftRetry = 5 * time.Minute

// SchemaDriftStatus is a stack's last schema drift check, in /status.
type SchemaDriftStatus struct {
	// Items counts the drifted objects of the last successful check.
	Items int `json:"items"`
	// Drifted lists them, one line each (the first 20).
	Drifted []string `json:"drifted,omitempty"`
	// Level is the migration level the last check compared at.
	Level     string    `json:"level,omitempty"`
	CheckedAt time.Time `json:"checkedAt,omitzero"`
	NextCheck time.Time `json:"nextCheck,omitzero"`
	Running   bool      `json:"running,omitempty"`
	// Expected says where the last check's expected schema came from:
	// cache (memory) or scratch (replayed for the check).
	Expected  string `json:"expected,omitempty"`
	ElapsedMS int64  `json:"elapsedMs,omitempty"`
	// Error is why the last check failed; Items then still holds the
	// result of the one before.
	Error string `json:"error,omitempty"`
}

// driftCheck is one stack's schedule and last result.
type driftCheck struct {
	status   SchemaDriftStatus
	rev      string // snapshot the running check reads migrations from
	notified string // the drift reported to receivers ("" none)
}

// schemaDrift is the loop's drift checks.
type schemaDrift struct {
	mu     sync.Mutex
	stacks map[string]*driftCheck
	sem    chan struct{} // one check at a time: a replay is heavy
	gauge  *prometheus.GaugeVec
}

func newSchemaDrift(m *Metrics) *schemaDrift {
	return &schemaDrift{stacks: map[string]*driftCheck{}, sem: make(chan struct{}, 1), gauge: m.schemaDrift}
}

// newSchemaDriftMetric is dbops_schema_drift_objects, registered on r.
func newSchemaDriftMetric(r *prometheus.Registry) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dbops_schema_drift_objects",
		Help: "Schema objects of the stack's database that differ from what its applied migrations produce, at the last successful drift check (spec.postgres.drift)."},
		[]string{"stack"})
	r.MustRegister(g)
	return g
}

// checksSchemaDrift says whether dbops run checks st's schema drift.
func checksSchemaDrift(st *spec.Stack) bool {
	pg := st.Spec.Postgres
	return pg != nil && pg.Migrations != nil && pg.Drift != nil && !st.Spec.Suspend
}

// schemaDriftChecks starts the checks that are due at now: a stack is
// checked when the loop first sees it, then every drift.interval after
// each check (driftRetry after a failure).
func (l *Loop) schemaDriftChecks(ctx context.Context, cur *revision, now time.Time) {
	sd := l.schema
	sd.mu.Lock()
	defer sd.mu.Unlock()
	seen := map[string]bool{}
	for i := range cur.stacks {
		st := &cur.stacks[i]
		name := st.Metadata.Name
		if !checksSchemaDrift(st) {
			continue
		}
		seen[name] = true
		c := sd.stacks[name]
		if c == nil {
			c = &driftCheck{}
			sd.stacks[name] = c
		}
		if c.status.Running || now.Before(c.status.NextCheck) {
			continue
		}
		c.status.Running, c.rev = true, cur.ID
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.checkSchemaDrift(ctx, st, now)
		}()
	}
	for name, c := range sd.stacks {
		if !seen[name] && !c.status.Running {
			delete(sd.stacks, name)
			sd.gauge.DeleteLabelValues(name)
		}
	}
}

// checkSchemaDrift runs one check and records, reports and notifies it.
func (l *Loop) checkSchemaDrift(ctx context.Context, st *spec.Stack, now time.Time) {
	sd := l.schema
	name := st.Metadata.Name
	select {
	case sd.sem <- struct{}{}:
	case <-ctx.Done():
		sd.mu.Lock()
		sd.stacks[name].status.Running, sd.stacks[name].rev = false, ""
		sd.mu.Unlock()
		return
	}
	r, err := reconcile.Drift(ctx, st, l.o.Reconcile)
	<-sd.sem

	sd.mu.Lock()
	c := sd.stacks[name]
	c.status.Running, c.rev = false, ""
	if err != nil {
		c.status.Error = spec.Mask(err.Error())
		next := now.Add(min(driftRetry, st.Spec.Postgres.Drift.Every()))
		c.status.NextCheck = next
		sd.mu.Unlock()
		if ctx.Err() == nil {
			l.o.Logger.Error("schema drift check failed", "stack", name, "err", spec.Mask(err.Error()),
				"next", next, "moved", errors.Is(err, drift.ErrMoved))
		}
		return
	}
	lines := make([]string, len(r.Items))
	for i, it := range r.Items {
		lines[i] = spec.Mask(oneLine(it))
	}
	c.status = SchemaDriftStatus{Items: len(r.Items), Drifted: lines[:min(20, len(lines))], Level: r.Level,
		CheckedAt: now, NextCheck: now.Add(st.Spec.Postgres.Drift.Every()), Expected: r.Expected, ElapsedMS: r.ElapsedMS}
	sd.gauge.WithLabelValues(name).Set(float64(len(r.Items)))
	state := strings.Join(lines, "\n")
	prev := c.notified
	c.notified = state
	sd.mu.Unlock()

	l.o.Logger.Info("schema drift checked", "stack", name, "items", len(r.Items), "level", r.Level,
		"expected", r.Expected, "elapsed_ms", r.ElapsedMS)
	if state == prev {
		return
	}
	corrected := false // dbops never corrects schema drift
	ev := notify.Event{Event: spec.EventSchemaDrift, Stack: name, Time: now, Corrected: &corrected, Changes: lines}
	if len(lines) == 0 {
		ev.Summary = fmt.Sprintf("schema drift cleared: the live schema matches the migrations again (level %s)", r.Level)
	} else {
		ev.Summary = fmt.Sprintf("%d schema object(s) differ from the applied migrations (level %s); dbops does not correct them: dbops drift %s PATH --sql shows the SQL to review",
			len(lines), r.Level, name)
	}
	l.o.Notify.Publish(ev)
}

// schemaDriftStatus is a stack's drift check for /status, or nil.
func (l *Loop) schemaDriftStatus(stack string) *SchemaDriftStatus {
	l.schema.mu.Lock()
	defer l.schema.mu.Unlock()
	if c := l.schema.stacks[stack]; c != nil {
		s := c.status
		return &s
	}
	return nil
}

// schemaDriftRevs are the snapshots running checks read migrations from:
// kept until the checks end.
func (l *Loop) schemaDriftRevs() []string {
	l.schema.mu.Lock()
	defer l.schema.mu.Unlock()
	var revs []string
	for _, c := range l.schema.stacks {
		if c.rev != "" {
			revs = append(revs, c.rev)
		}
	}
	return revs
}

// oneLine is a drift item on one line: a long definition (a function
// body) is not repeated; dbops drift shows it.
func oneLine(it drift.Item) string {
	if it.Change == drift.Changed && (strings.Contains(it.Live+it.Expected, "\n") || len(it.Live)+len(it.Expected) > 160) {
		return fmt.Sprintf("%s %s: definition differs live", it.Kind, it.Name)
	}
	return it.String()
}
