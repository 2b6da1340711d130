package main_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile/loop"
)

const hzStack = `apiVersion: dbops/v1
kind: Stack
metadata:
  name: clamp
spec:
  redis:
    url: ${REDIS_URL}
    config: {hz: HZ}
`

// configSetCalls is how many CONFIG SET the server has served.
func configSetCalls(t *testing.T, r *testsrv.Redis) int {
	t.Helper()
	info, err := r.Client(t).Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_config|set:calls="); ok {
			n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			return n
		}
	}
	return 0
}

// Redis stores hz 1000 as 500. apply must say so and fail; validate warns
// first; plan still shows the difference.
func TestAdjustedValueFailsApply(t *testing.T) {
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	f := clitest.NewFixture(t, nil)
	f.Env["REDIS_URL"] = r.URL()
	f.Write(t, "stack.yaml", strings.Replace(hzStack, "HZ", "1000", 1))
	if res := f.Run(t, "validate", "stack.yaml"); res.Code != 0 || !strings.Contains(res.Stderr, "spec.redis.config.hz: Redis stores hz=500 for the requested 1000") {
		t.Errorf("validate: %+v", res)
	}
	res := f.Run(t, "apply", "--auto-approve", "stack.yaml")
	if res.Code != 1 || !strings.Contains(res.Stdout+res.Stderr, "Redis stored hz=500 for the requested 1000") {
		t.Errorf("apply of a clamped value: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	if got := testsrv.ConfigGet(t, r.Client(t), "hz"); got != "500" {
		t.Errorf("hz = %s", got)
	}
}

// In dbops run a clamped value is one failed change, then a Stalled stack
// that is not re-sent every cycle, until the server or the spec changes.
func TestRunAdjustedValueNotResent(t *testing.T) {
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	f := clitest.NewFixture(t, nil)
	f.Env["REDIS_URL"] = r.URL()
	f.Write(t, "stack.yaml", strings.Replace(hzStack, "HZ", "1000", 1))
	p := startRun(t, f, freeAddrs(t, 1)[0], "--interval", "300ms")
	p.waitUp(t)
	reason := func() string {
		s := stackStatus(t, p, "clamp")
		if len(s.Conditions) == 0 {
			return ""
		}
		return s.Conditions[0].Reason
	}
	failed := func() float64 { return metricSum(p.get(t, "/metrics"), "dbops_changes_failed_total") }
	eventually(t, "stack Stalled", func() bool { return reason() == loop.ReasonStalled })
	s := stackStatus(t, p, "clamp")
	if msg := s.Conditions[0].Message; !strings.Contains(msg, "Redis stored hz=500 for the requested 1000") || s.Conditions[0].Status != "False" {
		t.Errorf("condition: %+v", s.Conditions[0])
	}
	if got := resourceState(s, "redis"); got != loop.StateFailed {
		t.Errorf("redis resource state %q", got)
	}
	calls := configSetCalls(t, r)
	first := s.LastCycle
	eventually(t, "three more cycles", func() bool {
		return stackStatus(t, p, "clamp").LastCycle.After(first.Add(900 * time.Millisecond))
	})
	if n := configSetCalls(t, r); n != calls {
		t.Errorf("CONFIG SET re-sent while stalled: %d calls, then %d", calls, n)
	}
	if n := failed(); n != 1 {
		t.Errorf("dbops_changes_failed_total = %v, want 1", n)
	}

	// The server changes: the value is sent again (and fails again).
	if err := r.Client(t).ConfigSet(context.Background(), "hz", "10").Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "re-sent after the server changed", func() bool { return failed() == 2 })
	// The spec changes to a value Redis keeps: applied, Ready again.
	f.Write(t, "stack.yaml", strings.Replace(hzStack, "HZ", "100", 1))
	eventually(t, "ReconciliationSucceeded after the spec changed", func() bool { return reason() == loop.ReasonSucceeded })
	if got := testsrv.ConfigGet(t, r.Client(t), "hz"); got != "100" {
		t.Errorf("hz = %s", got)
	}
}
