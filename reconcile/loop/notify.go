package loop

import (
	"fmt"
	"strings"
	"time"

	"github.com/amanat/dbops/reconcile/notify"
	"github.com/amanat/dbops/spec"
)

// notifyOutcome publishes a stack's outcome on changes of state only: an
// apply that changed something, the first failure of a run of failures
// (not one per retry), drift or deferral when first seen, and "resolved"
// when a failing stack is in sync again. Called with l.mu held; Publish
// never blocks.
func (l *Loop) notifyOutcome(s *stackState, name, rev string, out outcome, now time.Time) {
	prev := s.notified
	failedBefore := strings.HasPrefix(prev, "failed\x00")
	ev := notify.Event{Stack: name, Revision: rev, Time: now, Summary: spec.Mask(out.message)}
	state := ""
	switch {
	case out.failed || out.stalled:
		state = "failed\x00" + rev // a new revision failing is news
		ev.Event, ev.Errors = spec.EventFailed, []string{spec.Mask(out.message)}
		ev.Summary = fmt.Sprintf("%s: %s", out.reason, firstLine(ev.Summary))
	case out.reason == ReasonDrift:
		state = "drift\x00" + rev
		corrected := false
		ev.Event, ev.Corrected, ev.Changes = spec.EventDrift, &corrected, pending(out)
	case out.reason == ReasonDeferred:
		state = "deferred\x00" + rev
		ev.Event, ev.Changes = spec.EventDeferred, pending(out)
	}
	s.notified = state
	if state != "" && state == prev {
		return
	}
	if !out.failed && !out.stalled && failedBefore {
		res := ev
		res.Event, res.Errors, res.Summary = notify.EventResolved, nil, "recovered: "+firstLine(ev.Summary)
		l.o.Notify.Publish(res)
	}
	if state == "" && len(out.changes) > 0 {
		ev.Event, ev.Changes = spec.EventApplied, maskAll(out.changes)
	}
	if ev.Event != "" {
		l.o.Notify.Publish(ev)
	}
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
