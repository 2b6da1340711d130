package loop

import (
	"fmt"
	"time"

	"github.com/amanat/dbops/reconcile/notify"
	"github.com/amanat/dbops/spec"
)

// notifyOutcome publishes a stack's outcome on changes of state only: an
// apply that changed something, drift or deferral when first seen, and
// "resolved" when a failing stack is in sync again. Failures carry the
// length of the run of failures and whether the state changed, and the
// dispatcher tells each receiver once, when the run reaches its
// failureThreshold (not once per retry). It also moves the stack's commit
// status. Called with l.mu held; Publish never blocks.
func (l *Loop) notifyOutcome(s *stackState, name, rev string, out outcome, now time.Time) {
	prev := s.notified
	failing := out.failed || out.stalled
	streakBefore := s.failStreak
	if failing {
		s.failStreak++
	} else {
		s.failStreak = 0
	}
	l.commitOutcome(s, name, rev, out)
	ev := notify.Event{Stack: name, Revision: rev, Time: now, Summary: spec.Mask(out.message)}
	state := ""
	switch {
	case failing:
		state = "failed\x00" + rev // a new revision failing is news
		ev.Event, ev.Errors = spec.EventFailed, []string{spec.Mask(out.message)}
		ev.Summary = fmt.Sprintf("%s: %s", out.reason, firstLine(ev.Summary))
		ev.Consecutive = s.failStreak
	case out.reason == ReasonDrift:
		state = "drift\x00" + rev
		corrected := false
		ev.Event, ev.Corrected, ev.Changes = spec.EventDrift, &corrected, pending(out)
	case out.reason == ReasonDeferred:
		state = "deferred\x00" + rev
		ev.Event, ev.Changes = spec.EventDeferred, pending(out)
	}
	s.notified = state
	repeat := state != "" && state == prev
	if failing {
		// Every failure is published: a receiver's failureThreshold picks
		// the one that reaches it; First marks a change of state.
		ev.First = !repeat
		l.o.Notify.Publish(ev)
		return
	}
	if repeat {
		return
	}
	if streakBefore > 0 {
		res := ev
		res.Event, res.Errors, res.Summary = notify.EventResolved, nil, "recovered: "+firstLine(ev.Summary)
		res.Consecutive, res.Changes, res.Corrected = streakBefore, nil, nil
		l.o.Notify.Publish(res)
	}
	if state == "" && len(out.changes) > 0 {
		ev.Event, ev.Changes = spec.EventApplied, maskAll(out.changes)
	}
	if ev.Event != "" {
		l.o.Notify.Publish(ev)
	}
	if out.driftCorrected {
		// Drift found and put back: news to receivers of drift too.
		corrected := true
		fix := ev
		fix.Event, fix.Corrected, fix.Summary = spec.EventDrift, &corrected, "drift corrected: "+firstLine(ev.Summary)
		l.o.Notify.Publish(fix)
	}
}

// commitStarted posts a pending commit status when applying a revision to
// a stack starts, unless that revision already has a status for the stack
// (a retry, or drift put back): one status per state change, well under
// GitHub's 1000 per commit and context, and never a second "pending",
// which GitLab refuses.
func (l *Loop) commitStarted(name, rev string, changes int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stacks[name]
	if s == nil || (s.commit.rev == rev && s.commit.state != "") {
		return
	}
	s.commit.rev, s.commit.state = rev, notify.StatePending
	l.o.Notify.Publish(notify.Event{Event: notify.EventCommitStatus, CommitState: notify.StatePending, Stack: name, Revision: rev,
		Summary: fmt.Sprintf("applying %d change(s)", changes)})
}

// commitOutcome posts success or failure after a cycle of a revision that
// has a status for the stack, when the state changes. A deferral leaves it
// pending; a suspended, reported or locked stack changes nothing. Called
// with l.mu held.
func (l *Loop) commitOutcome(s *stackState, name, rev string, out outcome) {
	if s.commit.rev != rev {
		return
	}
	state := ""
	switch {
	case out.failed || out.stalled || out.reason == ReasonStalled:
		state = notify.StateFailure
	case out.reason == ReasonSucceeded:
		state = notify.StateSuccess
	}
	if state == "" || state == s.commit.state {
		return
	}
	s.commit.state = state
	l.o.Notify.Publish(notify.Event{Event: notify.EventCommitStatus, CommitState: state, Stack: name, Revision: rev,
		Summary: firstLine(spec.Mask(out.message))})
}

func changeLine(resource, before, after string) string {
	if before == "" && after == "" {
		return resource
	}
	return fmt.Sprintf("%s: %s -> %s", resource, orNone(before), orNone(after))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}

// maskAll masks registered secrets in every message.
func maskAll(msgs []string) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = spec.Mask(m)
	}
	return out
}

// pending lists the differences an outcome left in place (drift, deferred).
func pending(out outcome) []string {
	var lines []string
	for _, r := range out.resources {
		for _, c := range r.Changes {
			lines = append(lines, changeLine(c.Resource, c.Before, c.After))
		}
	}
	return maskAll(lines)
}
