package loop

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/lock"
	"github.com/amanat/dbops/reconcile/redis"
	"github.com/amanat/dbops/spec"
)

// stackState is what the loop remembers of one stack between cycles.
type stackState struct {
	status   StackStatus
	running  bool
	pending  bool   // a cycle was asked for while running: run again after
	rev      string // revision the running cycle reads its files from
	failures int
	retryAt  time.Time
	retry    *time.Timer
	// stalledAt is the revision a permanent error stalled the stack at: it
	// is not tried again until another revision is in force.
	stalledAt string
	adjusted  map[string]adjustment // Redis values the server stored differently
	// notified is the reason and revision of the last state reported to
	// receivers (failed, drift, deferred): a retry in the same state is not
	// reported again. The Ready condition cannot tell: "applying" replaces it.
	notified string
	// settled is the Ready condition of the last finished cycle: the
	// "applying" condition in between is not a transition of it.
	settled Condition
	// failStreak counts failed cycles in a row (failureThreshold).
	failStreak int
	// commit is the last commit status posted for the stack (github/gitlab).
	commit struct{ rev, state string }
}

// outcome is the result of one stack cycle.
type outcome struct {
	reason, message string
	resources       []ResourceStatus
	failed          bool // retried with backoff
	// stalled: a permanent error; retried on the next revision, not by backoff
	stalled                bool
	applied, failedChanges map[reconcile.Kind]int
	changes                []string // applied, as "resource: before -> after"
	// driftCorrected: changes were applied to a stack that had already
	// reached this revision, i.e. drift put back.
	driftCorrected bool
}

// dispatch starts reconciling st unless it is already running, or backing
// off after failures (its retry timer brings it back: retry bypasses that).
// The channel returned is closed once the stack has a slot (or gave up on
// one); it is nil when the stack was not started.
func (l *Loop) dispatch(ctx context.Context, rev string, st *spec.Stack, retry bool) <-chan struct{} {
	name := st.Metadata.Name
	l.mu.Lock()
	s := l.stacks[name]
	if s == nil {
		s = &stackState{status: StackStatus{Name: name}}
		l.stacks[name] = s
	}
	if s.running {
		// A new revision or a webhook must not wait a whole interval.
		s.pending = true
		l.mu.Unlock()
		return nil
	}
	if !retry && time.Now().Before(s.retryAt) {
		l.mu.Unlock()
		return nil
	}
	if s.stalledAt != "" && s.stalledAt == rev {
		// The same files fail the same way: wait for the repository to change.
		l.mu.Unlock()
		return nil
	}
	l.startRun(s, rev)
	l.mu.Unlock()

	started := make(chan struct{})
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		select {
		case l.sem <- struct{}{}:
			close(started)
		case <-ctx.Done():
			l.mu.Lock()
			l.endRun(s)
			l.mu.Unlock()
			close(started)
			return
		}
		defer func() { <-l.sem }()
		start := time.Now()
		out := l.reconcileStack(ctx, rev, st)
		l.finish(st, rev, out, start)
	}()
	return started
}

// retryStack re-runs a failed stack when its backoff has passed.
func (l *Loop) retryStack(ctx context.Context, name string) {
	l.mu.Lock()
	cur := l.current
	l.mu.Unlock()
	if cur == nil || ctx.Err() != nil {
		return
	}
	for i := range cur.stacks {
		if cur.stacks[i].Metadata.Name == name {
			l.dispatch(ctx, cur.ID, &cur.stacks[i], true)
		}
	}
}

// reconcileStack observes, plans and, when the stack's policy allows and
// its lock is free, applies — through the same code as `dbops plan/apply`.
func (l *Loop) reconcileStack(ctx context.Context, rev string, st *spec.Stack) outcome {
	stacks := []spec.Stack{*st}
	sp := l.plan(ctx, stacks)
	stalled := l.dropAdjusted(st.Metadata.Name, sp)
	if out, done := nothingToApply(sp, stalled); done {
		return out
	}
	switch {
	case st.Spec.Suspend:
		return outcome{reason: ReasonSuspended, message: fmt.Sprintf("suspended: %d difference(s) not applied", len(sp.Changes)), resources: resources(sp, StateSuspended)}
	case st.Spec.DriftPolicy == spec.DriftReport:
		return outcome{reason: ReasonDrift, message: fmt.Sprintf("driftPolicy report: %d difference(s) not applied", len(sp.Changes)), resources: resources(sp, StateDrifted)}
	}

	lk, err := l.lock(ctx, st, st.Metadata.Name)
	if errors.Is(err, lock.ErrHeld) {
		l.o.Metrics.lockHeld.WithLabelValues(st.Metadata.Name).Inc()
		return outcome{reason: ReasonLocked, message: "drift found; another dbops process holds the stack lock and applies", resources: resources(sp, StateDrifted)}
	}
	if err != nil {
		return outcome{reason: ReasonApplyFail, message: err.Error(), resources: resources(sp, StateDrifted), failed: true}
	}
	defer lk.Release(ctx)

	// Plan again under the lock: another process may have applied meanwhile.
	sp = l.plan(ctx, stacks)
	stalled = l.dropAdjusted(st.Metadata.Name, sp)
	if out, done := nothingToApply(sp, stalled); done {
		return out
	}
	if held := heldBack(sp); held < len(sp.Changes) {
		// Only when something will be applied: a cycle whose risky changes
		// all wait for a window says so once, as RiskyChangeDeferred.
		l.setResources(st.Metadata.Name, resources(sp, StateApplying))
		l.o.Logger.Info("applying", "stack", st.Metadata.Name, "changes", len(sp.Changes)-held, "deferred", held)
		l.commitStarted(st.Metadata.Name, rev, len(sp.Changes)-held)
	}
	plan := &reconcile.Plan{FormatVersion: reconcile.FormatVersion, Stacks: []reconcile.StackPlan{*sp}}
	res := reconcile.Apply(ctx, stacks, plan, l.o.Reconcile)
	l.recordAdjusted(st.Metadata.Name, res.Stacks[0].Changes)

	out := outcome{applied: map[reconcile.Kind]int{}, failedChanges: map[reconcile.Kind]int{}}
	var errs, deferred []string
	failedOn := map[string]string{} // resource ("postgres", "redis") → error
	for _, c := range res.Stacks[0].Changes {
		if c.Retries > 0 {
			l.o.Logger.Warn("migration retried after lock timeout", "stack", c.Stack, "resource", c.Resource, "retries", c.Retries, "status", c.Status)
		}
		switch c.Status {
		case reconcile.StatusDeferred:
			deferred = append(deferred, c.Resource+": "+c.Error)
		case reconcile.StatusDone:
			out.applied[c.Kind]++
			out.changes = append(out.changes, changeLine(c.Resource, c.Before, c.After))
			l.o.Logger.Info("applied", "stack", c.Stack, "resource", c.Resource, "before", c.Before, "after", c.After)
		case reconcile.StatusFailed:
			out.failedChanges[c.Kind]++
			failedOn[c.Kind.Server()] = c.Error
			errs = append(errs, c.Resource+": "+c.Error)
		}
	}
	errs = append(errs, res.Stacks[0].Errors.Strings()...)
	out.resources = resources(sp, StateInSync)
	for i, r := range out.resources {
		r.Changes = nil
		if msg, ok := failedOn[r.Resource]; ok {
			r.State, r.Error = StateFailed, msg
		}
		out.resources[i] = r
	}
	switch {
	case res.Failed():
		out.reason, out.message, out.failed = ReasonApplyFail, strings.Join(errs, "; "), true
		if len(errs) == 0 {
			out.message = "interrupted: dbops is shutting down"
		}
	case len(deferred) > 0:
		out.reason, out.message = ReasonDeferred, strings.Join(deferred, "; ")
		for i, r := range out.resources {
			for _, c := range sp.Changes {
				if c.Kind.Server() == r.Resource && c.Risk != "" {
					r.State, r.Changes = StateDrifted, append(r.Changes, c)
				}
			}
			out.resources[i] = r
		}
	case len(stalled) > 0:
		st := stalledOutcome(sp, stalled)
		out.reason, out.message = st.reason, fmt.Sprintf("applied %d change(s); %s", len(sp.Changes), st.message)
	default:
		out.reason, out.message = ReasonSucceeded, fmt.Sprintf("applied %d change(s)", len(sp.Changes))
	}
	return out
}

// nothingToApply is the outcome of a plan that leaves nothing to apply (it
// failed, or found no change but values the server stores differently, or
// none), checked before the stack lock and again under it.
func nothingToApply(sp *reconcile.StackPlan, stalled []string) (outcome, bool) {
	switch {
	case len(sp.Errors) > 0:
		return planFailed(sp), true
	case len(sp.Changes) == 0 && len(stalled) > 0:
		return stalledOutcome(sp, stalled), true
	case len(sp.Changes) == 0:
		return outcome{reason: ReasonSucceeded, message: inSync(sp), resources: resources(sp, StateInSync)}, true
	}
	return outcome{}, false
}

// heldBack counts the changes apply will defer to a maintenance window:
// risky ones the plan marked Deferred, and migrations after a deferred one
// (they run in order).
func heldBack(sp *reconcile.StackPlan) int {
	held, blocked := 0, false
	for _, c := range sp.Changes {
		switch {
		case c.Deferred != "":
			held++
			blocked = blocked || c.Kind == reconcile.ResourceMigration
		case blocked && c.Kind == reconcile.ResourceMigration:
			held++
		}
	}
	return held
}

// planFailed is the outcome of a plan with errors. When every error is
// permanent (the spec contradicts the servers: fix the repository) the stack
// is Stalled until a new revision; otherwise it is retried with backoff.
func planFailed(sp *reconcile.StackPlan) outcome {
	out := outcome{reason: ReasonPlanFailed, message: sp.Errors.Join("; "), resources: resources(sp, StateDrifted), failed: true}
	if sp.Errors.Permanent() {
		out.reason, out.failed, out.stalled = ReasonStalled, false, true
		out.message += "; fix the repository: retried when a new revision is in force"
	}
	return out
}

func (l *Loop) plan(ctx context.Context, stacks []spec.Stack) *reconcile.StackPlan {
	p := reconcile.PlanStacks(ctx, stacks, l.o.Reconcile)
	return &p.Stacks[0]
}

// lock takes a single-writer lock named key: a Postgres advisory lock when
// the stack has Postgres, else a Redis key with an expiry.
func (l *Loop) lock(ctx context.Context, st *spec.Stack, key string) (lock.Lock, error) {
	timeout := l.o.Reconcile.Timeout()
	if pg := st.Spec.Postgres; pg != nil {
		return lock.Postgres(ctx, pg.URL, key, timeout)
	}
	c, err := redis.Open(st.Spec.Redis.URL, timeout)
	if err != nil {
		return nil, err
	}
	lk, err := lock.Redis(ctx, c, key, l.o.Holder, l.o.LockTTL)
	if errors.Is(err, lock.ErrOutOfMemory) {
		// A full Redis under noeviction refuses the lock key, and refusing
		// to apply would keep it from getting a raised maxmemory. The apply
		// is one atomic, idempotent CONFIG SET, so go on without the lock.
		l.o.Logger.Warn("redis refused the stack lock key (out of memory); applying without it", "stack", st.Metadata.Name)
		return closingLock{noLock{}, func() { c.Close() }}, nil
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("redis %s: %w", redis.Server(st.Spec.Redis.URL), err)
	}
	return closingLock{lk, func() { c.Close() }}, nil
}

type noLock struct{}

func (noLock) Release(context.Context) error { return nil }

type closingLock struct {
	lock.Lock
	close func()
}

func (c closingLock) Release(ctx context.Context) error {
	err := c.Lock.Release(ctx)
	c.close()
	return err
}

// setResources shows a stack's resources while it applies.
func (l *Loop) setResources(name string, rs []ResourceStatus) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.stacks[name]; s != nil {
		s.status.Resources = rs
		s.status.Conditions = []Condition{{Type: "Ready", Status: "False", Reason: ReasonProgressing, Message: "applying", Since: time.Now()}}
	}
}

// finish records a stack's outcome in its status and metrics, and schedules
// a retry with backoff after a failure.
func (l *Loop) finish(st *spec.Stack, rev string, out outcome, start time.Time) {
	defer l.releaseSnapshots()
	name := st.Metadata.Name
	now := time.Now()
	m := l.o.Metrics
	m.duration.WithLabelValues(name).Observe(now.Sub(start).Seconds())
	for _, r := range out.resources {
		m.drift.WithLabelValues(name, r.Resource).Set(float64(len(r.Changes)))
		if r.Resource == "postgres" {
			m.pendingRestart.WithLabelValues(name).Set(float64(len(r.PendingRestart)))
		}
	}
	// One resource vocabulary across metrics and /status: the server a
	// change is made on ("postgres", "redis"), not the kind of change.
	for kind, n := range out.applied {
		m.applied.WithLabelValues(name, kind.Server()).Add(float64(n))
	}
	for kind, n := range out.failedChanges {
		m.failed.WithLabelValues(name, kind.Server()).Add(float64(n))
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stacks[name]
	l.endRun(s)
	if s.pending && !out.failed {
		if run := l.runCtx; run != nil && run.Err() == nil {
			go l.retryStack(run, name)
		}
	}
	s.pending = false
	prev := s.status
	s.status = StackStatus{
		Name: name, Suspended: st.Spec.Suspend, DriftPolicy: string(st.Spec.DriftPolicy),
		LastCycle: now, LastSuccess: prev.LastSuccess, Duration: now.Sub(start).Round(time.Millisecond).String(),
		DurationSeconds:       seconds(now.Sub(start)),
		Resources:             out.resources,
		LastAttemptedRevision: rev, LastAppliedRevision: prev.LastAppliedRevision,
	}
	if out.reason == ReasonSucceeded {
		s.status.LastAppliedRevision = rev
	}
	out.driftCorrected = prev.LastAppliedRevision == rev && len(out.changes) > 0
	s.stalledAt = ""
	if out.stalled {
		s.stalledAt = rev
	}
	ready := Condition{Type: "Ready", Status: "False", Reason: out.reason, Message: out.message, Since: now}
	if out.reason == ReasonSucceeded {
		ready.Status = "True"
	}
	if s.settled.Status == ready.Status && s.settled.Reason == ready.Reason {
		ready.Since = s.settled.Since
	}
	s.settled = ready
	s.status.Conditions = []Condition{ready}
	l.notifyOutcome(s, name, rev, out, now)

	if out.stalled {
		// A failure, counted and logged once; no backoff retry.
		s.failures, s.retryAt = 0, time.Time{}
		m.stackFailures.WithLabelValues(name).Inc()
		l.o.Logger.Error("stack stalled: fix the repository; retried when a new revision is in force", "stack", name, "revision", rev, "err", out.message)
		return
	}
	if !out.failed {
		s.failures, s.retryAt = 0, time.Time{}
		s.status.LastSuccess = now
		m.lastSuccess.WithLabelValues(name).Set(float64(now.Unix()))
		if out.reason != ReasonSucceeded || prev.Conditions == nil || prev.Conditions[0].Reason != out.reason {
			l.o.Logger.Info("stack reconciled", "stack", name, "reason", out.reason, "message", out.message)
		}
		return
	}
	m.stackFailures.WithLabelValues(name).Inc()
	s.failures++
	delay := l.backoff(s.failures)
	s.retryAt = now.Add(delay)
	retryAt := s.retryAt
	s.status.RetryAt = &retryAt
	l.o.Logger.Error("stack failed", "stack", name, "reason", out.reason, "err", out.message, "attempt", s.failures, "retry_in_seconds", seconds(delay))
	if run := l.runCtx; run != nil && run.Err() == nil {
		if s.retry != nil {
			s.retry.Stop()
		}
		s.retry = time.AfterFunc(delay, func() { l.retryStack(run, name) })
	}
}

// seconds is d in seconds, to the millisecond: durations in /status and
// logs are numbers.
func seconds(d time.Duration) float64 { return d.Round(time.Millisecond).Seconds() }

// startRun marks s running on rev; endRun marks it done. runningRevs counts
// the running cycles per revision, so that releaseSnapshots, called at every
// stack cycle's end, need not walk every stack. Called with l.mu held.
func (l *Loop) startRun(s *stackState, rev string) {
	s.running, s.rev = true, rev
	if rev != "" {
		l.runningRevs[rev]++
	}
}

func (l *Loop) endRun(s *stackState) {
	if s.running && s.rev != "" {
		if l.runningRevs[s.rev]--; l.runningRevs[s.rev] <= 0 {
			delete(l.runningRevs, s.rev)
		}
	}
	s.running, s.rev = false, ""
}

// releaseSnapshots deletes the snapshots of revisions that are neither in
// force nor still read by a running stack cycle.
func (l *Loop) releaseSnapshots() {
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	l.mu.Lock()
	var keep []string
	if l.current != nil {
		keep = append(keep, l.current.ID)
	}
	for rev := range l.runningRevs {
		keep = append(keep, rev)
	}
	l.mu.Unlock()
	keep = append(keep, l.schemaDriftRevs()...) // drift.go
	if len(keep) == 0 {
		return
	}
	// Every stack cycle ends here, so at fleet size a no-change cycle would
	// list the cache folder once per stack (a thousand times) to delete
	// nothing. Only a fetch adds snapshots, so with no fetch since the last
	// release and the same revisions kept there is nothing to delete.
	slices.Sort(keep)
	keep = slices.Compact(keep)
	key := strconv.Itoa(l.fetches) + "\x00" + strings.Join(keep, "\x00")
	if key == l.released {
		return
	}
	l.released = key
	l.o.Source.Release(keep...)
}
