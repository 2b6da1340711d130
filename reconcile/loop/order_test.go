package loop

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
)

// A new revision reconciles the stacks it changed before the others: with
// one slot, the changed stack finishes its cycle before any unchanged stack
// starts, wherever it is in the order (each round changes another one).
func TestChangedStacksFirst(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	params := []struct{ stack, param string }{{"a", "hz"}, {"b", "lfu-log-factor"}, {"c", "lfu-decay-time"}, {"d", "active-defrag-cycle-max"}}
	values := map[string]string{"a": "10", "b": "5", "c": "1", "d": "25"}
	write := func() map[string]string {
		files := map[string]string{}
		for _, p := range params {
			value := values[p.stack]
			files["stacks/"+p.stack+".yaml"] = "apiVersion: dbops/v1\nkind: Stack\nmetadata:\n  name: " + p.stack +
				"\nspec:\n  redis:\n    url: " + rd.URL() + "\n    config:\n      " + p.param + ": \"" + value + "\"\n"
		}
		return files
	}
	r := newRepo(t)
	r.commit(write())
	var logs testsrv.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("loop logs:\n%s", logs.String())
		}
	})
	l := New(Options{
		Source:      r.source(t),
		Interval:    time.Hour,
		Concurrency: 1,
		Logger:      slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Reconcile:   reconcile.Options{ConnectTimeout: 2 * time.Second},
		Holder:      "test",
	})
	cycle(t, l)
	for round, changed := range []int{0, 1, 2, 3, 2, 1} {
		p := params[changed]
		values[p.stack] = fmt.Sprint(11 + round)
		r.commit(write())
		cycle(t, l)
		if got := testsrv.ConfigGet(t, rd.Client(t), p.param); got != values[p.stack] {
			t.Fatalf("round %d: %s = %s, want %s", round, p.param, got, values[p.stack])
		}
		ch, _ := stateOf(l, p.stack)
		for _, other := range params {
			if other.stack == p.stack {
				continue
			}
			s, _ := stateOf(l, other.stack)
			if !ch.LastCycle.Before(s.LastCycle) {
				t.Errorf("round %d: changed stack %s finished at %s, unchanged %s at %s: want the changed one first",
					round, p.stack, ch.LastCycle.Format(time.StampMicro), other.stack, s.LastCycle.Format(time.StampMicro))
			}
		}
	}
}
