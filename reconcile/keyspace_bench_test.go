package reconcile_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile/redis"
)

// BenchmarkKeyspaceCount1M measures plan's bounded count (the default
// bound: 2 s, COUNT 1000) on a database of 1 million keys, 100,000 of
// which match. Run with
//
//	DBOPS_REQUIRE_SERVERS=1 go test -run '^$' -bench KeyspaceCount1M -benchtime 3x ./reconcile/
func BenchmarkKeyspaceCount1M(b *testing.B) {
	r := testsrv.NewRedis(b, testsrv.RedisOptions{})
	c := r.Client(b)
	ctx := context.Background()
	start := time.Now()
	for chunk := 0; chunk < 100; chunk++ {
		p := c.Pipeline()
		for i := range 10000 {
			n := chunk*10000 + i
			if n%10 == 0 {
				p.Set(ctx, fmt.Sprintf("payment:idem:%d", n), "v", 0)
			} else {
				p.Set(ctx, fmt.Sprintf("session:%d", n), "v", 0)
			}
		}
		if _, err := p.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("filled 1,000,000 keys in %s", time.Since(start).Round(time.Millisecond))
	for _, bound := range []redis.Bound{{}, {Count: 10000}} {
		b.Run(fmt.Sprintf("count-hint-%d", max(bound.Count, redis.DefaultScanCount)), func(b *testing.B) {
			for range b.N {
				t0 := time.Now()
				n, err := redis.CountMatching(ctx, c, "payment:idem:*", bound)
				if err != nil {
					b.Fatal(err)
				}
				b.Logf("counted %d matching keys, complete %v, in %s", n.Keys, n.Complete, time.Since(t0).Round(time.Millisecond))
			}
		})
	}
}
