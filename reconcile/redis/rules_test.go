package redis_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/spec"
)

// TestRedisRulesMatchServer checks the rules validate applies offline
// against a real redis-server: every parameter dbops refuses as immutable
// or protected is refused by CONFIG SET (even with its current value), the
// ends of every integer range are accepted and the values beyond refused,
// and every clamp dbops predicts is what the server stores.
func TestRedisRulesMatchServer(t *testing.T) {
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := r.Client(t)
	ctx := context.Background()
	for _, name := range append(append([]string{}, spec.ImmutableRedisParams...), spec.ProtectedRedisParams...) {
		cur := testsrv.ConfigGet(t, c, name)
		err := c.ConfigSet(ctx, name, cur).Err()
		if err == nil || !(strings.Contains(err.Error(), "immutable") || strings.Contains(err.Error(), "protected")) {
			t.Errorf("CONFIG SET %s %q: %v; dbops refuses it offline", name, cur, err)
		}
	}
	for name, rg := range spec.RedisIntRanges() {
		cur := testsrv.ConfigGet(t, c, name)
		for _, v := range []int64{rg[0] - 1, rg[1] + 1} {
			if (v == rg[0]-1 && rg[0] == -1<<63) || (v == rg[1]+1 && rg[1] == 1<<63-1) {
				continue // no value beyond int64
			}
			if err := c.ConfigSet(ctx, name, strconv.FormatInt(v, 10)).Err(); err == nil {
				t.Errorf("CONFIG SET %s %d accepted; dbops refuses it offline", name, v)
			}
			if _, err := spec.NormalizeRedis(name, strconv.FormatInt(v, 10)); err == nil {
				t.Errorf("NormalizeRedis(%s, %d) accepted", name, v)
			}
		}
		if err := c.ConfigSet(ctx, name, strconv.FormatInt(rg[0], 10)).Err(); err != nil && name != "maxclients" {
			t.Errorf("CONFIG SET %s %d (lowest accepted): %v", name, rg[0], err)
		}
		c.ConfigSet(ctx, name, cur)
	}
	for _, v := range []string{"0", "1", "500", "1000"} {
		want, _ := spec.RedisStored("hz", v)
		if err := c.ConfigSet(ctx, "hz", v).Err(); err != nil {
			t.Fatal(err)
		}
		if got := testsrv.ConfigGet(t, c, "hz"); got != want {
			t.Errorf("hz %s: server stores %s, dbops predicts %s", v, got, want)
		}
	}
}
