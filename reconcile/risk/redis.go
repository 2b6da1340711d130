package risk

import (
	"fmt"
	"strconv"
	"strings"
)

// RedisLive is what the server reported before the change: used_memory from
// INFO memory, and the live maxmemory (bytes), maxmemory-policy and
// appendonly from CONFIG GET.
type RedisLive struct {
	UsedMemory, MaxMemory uint64
	Policy, AppendOnly    string
}

// nearLimit is the share of maxmemory in use above which noeviction is risky.
const nearLimit = 0.9

// Redis returns the findings for setting param from its live value to
// desired, alone. desired is normalised as spec.NormalizeRedis does (bytes
// for maxmemory, yes/no, lower-case enums). When several parameters change
// in one CONFIG SET, use RedisSet, which judges each against the others'
// new values.
func Redis(param, desired string, live RedisLive) []Finding {
	return RedisSet(map[string]string{param: desired}, live)[strings.ToLower(param)]
}

// RedisSet returns the findings, by lower-case parameter name, of setting
// all the desired parameters together (one CONFIG SET). A parameter without
// findings is absent from the map.
//
//   - appendonly yes → no: durability is lost.
//   - maxmemory below used_memory (0 means no limit): Redis evicts keys or
//     refuses writes at once.
//   - maxmemory-policy → noeviction while used_memory is at least 90% of the
//     (new) maxmemory, and maxmemory lowered near used_memory while the (new)
//     policy is noeviction: writes will soon be refused.
func RedisSet(desired map[string]string, live RedisLive) map[string][]Finding {
	want := make(map[string]string, len(desired))
	for k, v := range desired {
		want[strings.ToLower(k)] = strings.ToLower(strings.TrimSpace(v))
	}
	policy := live.Policy
	if p, ok := want["maxmemory-policy"]; ok {
		policy = p
	}
	maxMem := live.MaxMemory
	if v, ok := want["maxmemory"]; ok {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			maxMem = n
		}
	}
	used := live.UsedMemory
	near := maxMem != 0 && float64(used) >= nearLimit*float64(maxMem)

	out := map[string][]Finding{}
	if want["appendonly"] == "no" && live.AppendOnly == "yes" {
		out["appendonly"] = append(out["appendonly"], Finding{RuleAppendOnlyOff,
			"turning AOF off (appendonly yes → no) loses durability: writes since the last RDB snapshot are lost if Redis stops or crashes"})
	}
	if _, ok := want["maxmemory"]; ok && maxMem != live.MaxMemory && maxMem != 0 {
		switch {
		case maxMem < used:
			effect := "evicts keys (maxmemory-policy " + policy + ")"
			if policy == "noeviction" {
				effect = "refuses writes (maxmemory-policy noeviction)"
			}
			out["maxmemory"] = append(out["maxmemory"], Finding{RuleMaxMemoryBelowUsed,
				fmt.Sprintf("maxmemory %s is below the %s in use: Redis %s at once", formatBytes(maxMem), formatBytes(used), effect)})
		case near && policy == "noeviction":
			out["maxmemory"] = append(out["maxmemory"], Finding{RuleNoEvictionNearLimit,
				fmt.Sprintf("maxmemory %s with maxmemory-policy noeviction while %s is in use (%s): writes will be refused when it is reached", formatBytes(maxMem), formatBytes(used), percent(used, maxMem))})
		}
	}
	if p, ok := want["maxmemory-policy"]; ok && p == "noeviction" && live.Policy != "noeviction" && near {
		out["maxmemory-policy"] = append(out["maxmemory-policy"], Finding{RuleNoEvictionNearLimit,
			fmt.Sprintf("maxmemory-policy noeviction while %s of maxmemory %s is in use (%s): Redis will refuse writes instead of evicting when it is reached", formatBytes(used), formatBytes(maxMem), percent(used, maxMem))})
	}
	return out
}

func percent(used, limit uint64) string {
	return strconv.FormatFloat(100*float64(used)/float64(limit), 'f', 0, 64) + "%"
}
