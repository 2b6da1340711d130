package loop

import (
	"slices"
	"strings"

	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/spec"
)

// ReasonStalled: a value the server stores differently from the spec (Redis
// clamps hz 1000 to 500) is not re-sent every cycle; the stack stays not
// Ready with both values named until the spec or the server changes.
const ReasonStalled = "Stalled"

// adjustment is a Redis parameter the server stored differently, both
// values normalised.
type adjustment struct{ requested, stored, message string }

// recordAdjusted remembers the changes the server stored differently, and
// forgets parameters that were applied as asked.
func (l *Loop) recordAdjusted(name string, results []reconcile.ChangeResult) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stacks[name]
	if s == nil {
		return
	}
	for _, c := range results {
		if c.Kind != reconcile.ResourceRedisConfig {
			continue
		}
		switch {
		case c.Status == reconcile.StatusFailed && c.Stored != "":
			if s.adjusted == nil {
				s.adjusted = map[string]adjustment{}
			}
			req, _ := spec.NormalizeRedis(c.Name, c.After)
			stored, _ := spec.NormalizeRedis(c.Name, c.Stored)
			s.adjusted[c.Name] = adjustment{requested: req, stored: stored, message: c.Error}
		case c.Status == reconcile.StatusDone:
			delete(s.adjusted, c.Name)
		}
	}
}

// dropAdjusted removes from sp the Redis changes the server already stored
// differently for the same requested value, and returns their messages.
// A change of the spec or of the live value makes the change go out again.
func (l *Loop) dropAdjusted(name string, sp *reconcile.StackPlan) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stacks[name]
	if s == nil || len(s.adjusted) == 0 {
		return nil
	}
	var msgs []string
	seen := map[string]bool{}
	sp.Changes = slices.DeleteFunc(sp.Changes, func(c reconcile.Change) bool {
		if c.Kind != reconcile.ResourceRedisConfig {
			return false
		}
		seen[c.Name] = true
		a, ok := s.adjusted[c.Name]
		if !ok {
			return false
		}
		req, _ := spec.NormalizeRedis(c.Name, c.After)
		live, _ := spec.NormalizeRedis(c.Name, c.Before)
		if req != a.requested || live != a.stored {
			delete(s.adjusted, c.Name)
			return false
		}
		msgs = append(msgs, a.message)
		return true
	})
	for p := range s.adjusted {
		if !seen[p] { // no longer differs: the spec or the server changed
			delete(s.adjusted, p)
		}
	}
	return msgs
}

// stalledOutcome reports a stack whose only differences are values the
// server adjusts.
func stalledOutcome(sp *reconcile.StackPlan, stalled []string) outcome {
	msg := strings.Join(stalled, "; ") + "; not re-sent until the spec or the server changes"
	rs := resources(sp, StateInSync)
	for i := range rs {
		if rs[i].Resource == "redis" {
			rs[i].State, rs[i].Error = StateFailed, msg
		}
	}
	return outcome{reason: ReasonStalled, message: msg, resources: rs}
}
