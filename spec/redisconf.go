package spec

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// How Redis parses a CONFIG parameter; values are compared in that form.
type paramKind int

const (
	kindString paramKind = iota
	kindMemory
	kindBool
	kindEnum
	kindSave
	kindInt
)

type paramSpec struct {
	kind   paramKind
	values []string // accepted values of an enum
}

// EvictionPolicies are the values Redis accepts for maxmemory-policy.
var EvictionPolicies = []string{
	"volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
	"allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction",
}

// FsyncPolicies are the values Redis accepts for appendfsync.
var FsyncPolicies = []string{"always", "everysec", "no"}

// redisParams lists the parameters whose values dbops understands; any other
// parameter is compared as text and checked by the server at plan time.
var redisParams = map[string]paramSpec{
	"maxmemory":                   {kind: kindMemory},
	"maxmemory-policy":            {kind: kindEnum, values: EvictionPolicies},
	"maxmemory-samples":           {kind: kindInt},
	"appendonly":                  {kind: kindBool},
	"appendfsync":                 {kind: kindEnum, values: FsyncPolicies},
	"save":                        {kind: kindSave},
	"auto-aof-rewrite-min-size":   {kind: kindMemory},
	"auto-aof-rewrite-percentage": {kind: kindInt},
	"client-query-buffer-limit":   {kind: kindMemory},
	"proto-max-bulk-len":          {kind: kindMemory},
	"repl-backlog-size":           {kind: kindMemory},
	"active-defrag-ignore-bytes":  {kind: kindMemory},
	"rdbcompression":              {kind: kindBool},
	"activedefrag":                {kind: kindBool},
	"lazyfree-lazy-eviction":      {kind: kindBool},
	"lazyfree-lazy-expire":        {kind: kindBool},
	"lazyfree-lazy-server-del":    {kind: kindBool},
	"lazyfree-lazy-user-del":      {kind: kindBool},
	"no-appendfsync-on-rewrite":   {kind: kindBool},
	"hz":                          {kind: kindInt},
	"timeout":                     {kind: kindInt},
	"tcp-keepalive":               {kind: kindInt},
	"maxclients":                  {kind: kindInt},
	"slowlog-log-slower-than":     {kind: kindInt},
	"slowlog-max-len":             {kind: kindInt},
	"latency-monitor-threshold":   {kind: kindInt},
}

// secretParams hold credentials; managing them would print them in plans.
var secretParams = []string{"requirepass", "masterauth", "masteruser", "tls-key-file-pass", "tls-client-key-file-pass"}

var memoryUnits = map[string]uint64{
	"":   1,
	"b":  1,
	"k":  1000,
	"kb": 1024,
	"m":  1000 * 1000,
	"mb": 1024 * 1024,
	"g":  1000 * 1000 * 1000,
	"gb": 1024 * 1024 * 1024,
}

// ParseMemory parses a Redis memory size as Redis does: digits with an
// optional case-insensitive unit (k=1000, kb=1024, m, mb, g, gb).
func ParseMemory(s string) (uint64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(s)
	}
	unit, ok := memoryUnits[s[i:]]
	if i == 0 || !ok {
		return 0, fmt.Errorf("%q is not a memory size (bytes, or a number with k, kb, m, mb, g or gb)", s)
	}
	n, err := strconv.ParseUint(s[:i], 10, 64)
	if err != nil || n > ^uint64(0)/unit {
		return 0, fmt.Errorf("%q is not a memory size: out of range", s)
	}
	return n * unit, nil
}

// SavePoint is one "save <seconds> <changes>" snapshot rule.
type SavePoint struct{ Seconds, Changes int64 }

// ParseSave parses the save parameter into its (seconds, changes) pairs;
// "" means snapshots are disabled and gives no pairs.
func ParseSave(s string) ([]SavePoint, error) {
	f := strings.Fields(s)
	if len(f)%2 != 0 {
		return nil, fmt.Errorf("%q is not a list of <seconds> <changes> pairs (\"\" disables snapshots)", s)
	}
	out := make([]SavePoint, 0, len(f)/2)
	for i := 0; i < len(f); i += 2 {
		sec, err1 := strconv.ParseInt(f[i], 10, 64)
		chg, err2 := strconv.ParseInt(f[i+1], 10, 64)
		if err1 != nil || err2 != nil || sec < 1 || chg < 0 {
			return nil, fmt.Errorf("%q is not a list of <seconds> <changes> pairs (\"\" disables snapshots)", s)
		}
		out = append(out, SavePoint{sec, chg})
	}
	slices.SortFunc(out, func(a, b SavePoint) int {
		if a.Seconds != b.Seconds {
			return int(b.Seconds - a.Seconds)
		}
		return int(a.Changes - b.Changes)
	})
	return out, nil
}

// NormalizeRedis returns value in the form Redis holds it for parameter
// name, so that a desired value and a CONFIG GET answer compare equal when
// Redis would treat them as the same. Unknown parameters compare as text.
func NormalizeRedis(name, value string) (string, error) {
	p := redisParams[strings.ToLower(name)]
	switch p.kind {
	case kindMemory:
		n, err := ParseMemory(value)
		if err != nil {
			return "", err
		}
		return strconv.FormatUint(n, 10), nil
	case kindBool:
		switch v := strings.ToLower(strings.TrimSpace(value)); v {
		case "yes", "no":
			return v, nil
		}
		return "", fmt.Errorf("%q is not yes or no", value)
	case kindEnum:
		v := strings.ToLower(strings.TrimSpace(value))
		if !slices.Contains(p.values, v) {
			return "", fmt.Errorf("%q is not one of %s", value, strings.Join(p.values, ", "))
		}
		return v, nil
	case kindSave:
		pts, err := ParseSave(value)
		if err != nil {
			return "", err
		}
		parts := make([]string, 0, 2*len(pts))
		for _, sp := range pts {
			parts = append(parts, strconv.FormatInt(sp.Seconds, 10), strconv.FormatInt(sp.Changes, 10))
		}
		return strings.Join(parts, " "), nil
	case kindInt:
		v := strings.TrimSpace(value)
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", fmt.Errorf("%q is not an integer", value)
		}
		if err := checkIntRange(strings.ToLower(name), n); err != nil {
			return "", err
		}
		return strconv.FormatInt(n, 10), nil
	}
	return strings.TrimSpace(value), nil
}
