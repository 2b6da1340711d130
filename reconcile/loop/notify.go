package loop

import (
	"fmt"
	"time"

	"github.com/amanat/dbops/reconcile/notify"
	"github.com/amanat/dbops/spec"
)

// notifyOutcome publishes a stack's outcome on changes of state only: an
// apply that changed something, the first failure of a run of failures
// (not one per retry), drift or deferral when first seen, and "resolved"
// when a failing stack is in sync again. Called with l.mu held; Publish
// never blocks.
func (l *Loop) notifyOutcome(name, rev string, out outcome, prev StackStatus, now time.Time) {
	prevReason := ""
	if len(prev.Conditions) > 0 {
		prevReason = prev.Conditions[0].Reason
	}
	// A new revision is a new state: its failure is reported even when the
	// previous revision failed the same way.
	changed := out.reason != prevReason || rev != prev.LastAttemptedRevision
	ev := notify.Event{Stack: name, Revision: rev, Time: now, Summary: spec.Mask(out.message)}
	switch {
	case out.failed || out.stalled:
		if !changed {
			return
		}
		ev.Event, ev.Errors = spec.EventFailed, []string{spec.Mask(out.message)}
		ev.Summary = fmt.Sprintf("%s: %s", out.reason, firstLine(ev.Summary))
	case out.reason == ReasonDrift:
		if !changed {
			return
		}
		corrected := false
		ev.Event, ev.Corrected = spec.EventDrift, &corrected
	case out.reason == ReasonDeferred:
		if !changed {
			return
		}
		ev.Event = spec.EventDeferred
	case len(out.changes) > 0:
		ev.Event, ev.Changes = spec.EventApplied, maskAll(out.changes)
	case out.reason == ReasonSucceeded && (prevReason == ReasonApplyFail || prevReason == ReasonPlanFailed || prevReason == ReasonStalled):
		ev.Event, ev.Summary = notify.EventResolved, "in sync again after "+prevReason
	default:
		return
	}
	l.o.Notify.Publish(ev)
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
