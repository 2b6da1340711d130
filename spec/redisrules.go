package spec

import (
	"fmt"
	"math"
	"slices"
	"strconv"
)

// Rules Redis (7 and later) applies to CONFIG SET, known offline so that
// validate reports them before a server refuses or adjusts the value.
// Checked against a real redis-server by TestRedisRulesMatchServer.

// ImmutableRedisParams can only be set at startup: CONFIG SET answers "can't set
// immutable config".
var ImmutableRedisParams = []string{
	"daemonize", "supervised", "pidfile", "logfile", "syslog-enabled", "syslog-ident", "syslog-facility",
	"databases", "io-threads", "io-threads-do-reads", "unixsocket", "unixsocketperm", "always-show-logo",
	"set-proc-title", "cluster-enabled", "cluster-config-file", "cluster-port", "aclfile", "disable-thp",
	"tcp-backlog", "appendfilename", "appenddirname", "rdbchecksum", "enable-protected-configs",
	"enable-debug-command", "enable-module-command",
}

// ProtectedRedisParams are refused by CONFIG SET unless the server runs with
// enable-protected-configs yes, which is off by default.
var ProtectedRedisParams = []string{"dir", "dbfilename"}

// intRange is the inclusive range CONFIG SET accepts for an integer.
type intRange struct{ min, max int64 }

var redisIntRanges = map[string]intRange{
	"hz":                          {0, math.MaxInt32},
	"maxclients":                  {1, math.MaxUint32},
	"maxmemory-samples":           {1, math.MaxInt32},
	"timeout":                     {0, math.MaxInt32},
	"tcp-keepalive":               {0, math.MaxInt32},
	"auto-aof-rewrite-percentage": {0, math.MaxInt32},
	"slowlog-max-len":             {0, math.MaxInt64},
	"slowlog-log-slower-than":     {-1, math.MaxInt64},
	"latency-monitor-threshold":   {0, math.MaxInt64},
}

// redisClamps are ranges Redis accepts but then clamps the value into: it
// stores another value than the one set (hz 1000 is stored as 500).
var redisClamps = map[string]intRange{
	"hz": {1, 500},
}

// redisParamRule says why a parameter cannot be managed at runtime, "" when
// it can.
func redisParamRule(name string) string {
	switch {
	case slices.Contains(ImmutableRedisParams, name):
		return name + " cannot be changed at runtime (Redis refuses CONFIG SET of an immutable parameter): set it in redis.conf"
	case slices.Contains(ProtectedRedisParams, name):
		return name + " is a protected parameter: Redis refuses CONFIG SET of it unless enable-protected-configs is yes; set it in redis.conf"
	}
	return ""
}

// checkIntRange checks an integer value against the range Redis accepts.
func checkIntRange(name string, n int64) error {
	r, ok := redisIntRanges[name]
	if ok && (n < r.min || n > r.max) {
		return fmt.Errorf("%d is out of range: Redis accepts %s from %d to %d", n, name, r.min, r.max)
	}
	return nil
}

// RedisIntRanges lists the integer parameters whose accepted range dbops
// checks offline, with that range.
func RedisIntRanges() map[string][2]int64 {
	out := map[string][2]int64{}
	for k, r := range redisIntRanges {
		out[k] = [2]int64{r.min, r.max}
	}
	return out
}

// RedisStored returns the value Redis stores for a normalised value it
// adjusts (hz 1000 → 500), and whether it differs from the one given.
func RedisStored(name, value string) (string, bool) {
	c, ok := redisClamps[name]
	if !ok {
		return value, false
	}
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return value, false
	}
	stored := min(max(n, c.min), c.max)
	return strconv.FormatInt(stored, 10), stored != n
}
