package loop

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile/redis"
)

// TestKeyspaceJobInLoop: two replicas reconciling the same stack, then a
// restarted one, run a keyspace job once: the keys are deleted once, one
// record is kept, and keys written after it are never deleted again.
func TestKeyspaceJobInLoop(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := rd.Client(t)
	ctx := context.Background()
	put := func(prefix string, n int) {
		t.Helper()
		p := c.Pipeline()
		for i := range n {
			p.Set(ctx, fmt.Sprintf("%s%d", prefix, i), "v", 0)
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	count := func(pattern string) int64 {
		t.Helper()
		n, err := redis.CountMatching(ctx, c, pattern, redis.Bound{Time: 1 << 40})
		if err != nil {
			t.Fatal(err)
		}
		return n.Keys
	}
	put("payment:idem:", 300)
	put("session:", 700)
	r := newRepo(t)
	r.commit(map[string]string{"stacks/cache.yaml": redisStack("cache", rd.URL(), "64mb",
		"") + "    keyspaceJobs:\n      - {id: idem-v2, delete: {match: \"payment:idem:*\"}}\n"})
	var logsA, logsB testsrv.Buffer
	a, b := newLoop(t, r.source(t), &logsA), newLoop(t, r.source(t), &logsB)
	var wg sync.WaitGroup
	for _, l := range []*Loop{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); cycle(t, l) }()
	}
	wg.Wait()
	for _, l := range []*Loop{a, b} { // the replica that lost the race converges on its next cycle
		if st, _ := stateOf(l, "cache"); !ready(st) {
			cycle(t, l)
		}
	}
	for name, l := range map[string]*Loop{"a": a, "b": b} {
		if st, _ := stateOf(l, "cache"); !ready(st) {
			t.Errorf("replica %s not ready: %+v", name, st.Conditions)
		}
	}
	if n := count("payment:idem:*"); n != 0 {
		t.Fatalf("%d keys left", n)
	}
	if n := count("session:*"); n != 700 {
		t.Fatalf("other keys deleted: %d of 700 left", n)
	}
	put("payment:idem:new", 5)
	restarted := newLoop(t, r.source(t), &testsrv.Buffer{})
	cycle(t, restarted)
	if n := count("payment:idem:*"); n != 5 {
		t.Errorf("the job ran again after a restart: %d of 5 new keys left", n)
	}
	if n, _ := c.HLen(ctx, redis.JobsKey).Result(); n != 1 {
		t.Errorf("%d records, want 1", n)
	}
}

func ready(st StackStatus) bool {
	for _, c := range st.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}
