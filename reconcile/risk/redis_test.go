package risk

import (
	"strings"
	"testing"
)

const mb = 1 << 20

func TestRedis(t *testing.T) {
	live := RedisLive{UsedMemory: 200 * mb, MaxMemory: 256 * mb, Policy: "allkeys-lru", AppendOnly: "yes"}
	tests := []struct {
		name    string
		param   string
		desired string
		live    RedisLive
		want    string // "rule|substring", "" for no finding
	}{
		{"appendonly off", "appendonly", "no", live, "appendonly-off|turning AOF off"},
		{"appendonly param case", "APPENDONLY", "no", live, "appendonly-off|"},
		{"appendonly on is safe", "appendonly", "yes", RedisLive{AppendOnly: "no"}, ""},
		{"appendonly already off", "appendonly", "no", RedisLive{AppendOnly: "no"}, ""},
		{"maxmemory below used", "maxmemory", "104857600", live, "maxmemory-below-used|maxmemory 100 MiB is below the 200 MiB in use: Redis evicts keys (maxmemory-policy allkeys-lru) at once"},
		{"maxmemory below used with noeviction", "maxmemory", "104857600", RedisLive{UsedMemory: 200 * mb, Policy: "noeviction"}, "maxmemory-below-used|refuses writes"},
		{"maxmemory above used", "maxmemory", "536870912", live, ""},
		{"maxmemory lowered but above used", "maxmemory", "230686720", live, ""},
		{"maxmemory 0 is unlimited", "maxmemory", "0", live, ""},
		{"maxmemory unchanged", "maxmemory", "268435456", RedisLive{UsedMemory: 300 * mb, MaxMemory: 256 * mb}, ""},
		{"maxmemory near used with noeviction", "maxmemory", "209715200", RedisLive{UsedMemory: 190 * mb, MaxMemory: 0, Policy: "noeviction"}, "noeviction-near-limit|95%"},
		{"noeviction near limit", "maxmemory-policy", "noeviction", RedisLive{UsedMemory: 240 * mb, MaxMemory: 256 * mb, Policy: "allkeys-lru"}, "noeviction-near-limit|maxmemory-policy noeviction while 240 MiB of maxmemory 256 MiB is in use (94%)"},
		{"noeviction at exactly 90%", "maxmemory-policy", "noeviction", RedisLive{UsedMemory: 90, MaxMemory: 100}, "noeviction-near-limit|"},
		{"noeviction just under 90%", "maxmemory-policy", "noeviction", RedisLive{UsedMemory: 89, MaxMemory: 100}, ""},
		{"noeviction far from limit", "maxmemory-policy", "noeviction", RedisLive{UsedMemory: 10 * mb, MaxMemory: 256 * mb}, ""},
		{"noeviction without a limit", "maxmemory-policy", "noeviction", RedisLive{UsedMemory: 10 * mb, MaxMemory: 0}, ""},
		{"already noeviction", "maxmemory-policy", "noeviction", RedisLive{UsedMemory: 250 * mb, MaxMemory: 256 * mb, Policy: "noeviction"}, ""},
		{"other policy near limit", "maxmemory-policy", "volatile-lru", RedisLive{UsedMemory: 250 * mb, MaxMemory: 256 * mb}, ""},
		{"unrelated parameter", "hz", "20", live, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Redis(tt.param, tt.desired, tt.live)
			if tt.want == "" {
				if len(got) != 0 {
					t.Fatalf("got %q, want none", got)
				}
				return
			}
			rule, sub, _ := strings.Cut(tt.want, "|")
			if len(got) != 1 || got[0].Rule != rule || !strings.Contains(got[0].Reason, sub) {
				t.Fatalf("got %q, want one %s containing %q", got, rule, sub)
			}
		})
	}
}

// TestRedisSet checks that parameters set together are judged against each
// other's new values.
func TestRedisSet(t *testing.T) {
	live := RedisLive{UsedMemory: 240 * mb, MaxMemory: 0, Policy: "allkeys-lru", AppendOnly: "yes"}
	// Alone, noeviction is safe: there is no limit.
	if got := Redis("maxmemory-policy", "noeviction", live); len(got) != 0 {
		t.Errorf("noeviction alone: %q", got)
	}
	// With a new 256 MiB limit set at the same time, 240 MiB is 94% of it.
	got := RedisSet(map[string]string{"maxmemory-policy": "noeviction", "maxmemory": "268435456", "appendonly": "yes"}, live)
	if f := got["maxmemory-policy"]; len(f) != 1 || f[0].Rule != RuleNoEvictionNearLimit {
		t.Errorf("maxmemory-policy: %q", f)
	}
	if f := got["maxmemory"]; len(f) != 1 || f[0].Rule != RuleNoEvictionNearLimit {
		t.Errorf("maxmemory: %q", f)
	}
	if f, ok := got["appendonly"]; ok {
		t.Errorf("appendonly: %q", f)
	}
	// A larger new limit makes the same policy change safe.
	got = RedisSet(map[string]string{"maxmemory-policy": "noeviction", "maxmemory": "1073741824"}, RedisLive{UsedMemory: 240 * mb, MaxMemory: 256 * mb})
	if len(got) != 0 {
		t.Errorf("raised limit: %q", got)
	}
}
