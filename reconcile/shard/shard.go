// Package shard splits stacks between `dbops run` replicas: a stack belongs
// to exactly one of N shards, decided from its name alone, so replicas
// agree without talking to each other (no membership protocol, no leases).
package shard

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"strconv"
)

// Of is the shard, in [0, n), that owns the stack named name: Jump
// Consistent Hash (Lamping & Veach, 2014, https://arxiv.org/abs/1406.2294)
// of the 64-bit FNV-1a hash of the name's bytes. Both are fixed algorithms,
// so the mapping never changes between versions or machines. Unlike
// FNV mod n, changing n to n+1 moves only about 1/(n+1) of the stacks (all
// to the new shard), so resizing a fleet re-homes few stacks.
func Of(name string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	return jump(h.Sum64(), n)
}

// jump is the reference implementation from the paper.
func jump(key uint64, n int) int {
	var b, j int64 = -1, 0
	for j < int64(n) {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int(b)
}

// Spec is one replica's place in the fleet: it owns the stacks s with
// Of(s, Count) == Index. The zero value (Count 0) owns every stack.
type Spec struct {
	Index, Count int
}

// Owns reports whether the replica reconciles and backs up stack name.
func (s Spec) Owns(name string) bool {
	return s.Count <= 1 || Of(name, s.Count) == s.Index
}

// ordinal is a StatefulSet pod's hostname: <statefulset name>-<ordinal>.
var ordinal = regexp.MustCompile(`-([0-9]+)$`)

// Resolve checks --shards and --shard-index and, when the index is not
// given (index < 0), takes it from the StatefulSet ordinal at the end of
// hostname (dbops-2 → 2).
func Resolve(count, index int, hostname string) (Spec, error) {
	switch {
	case count < 0:
		return Spec{}, fmt.Errorf("--shards %d: give a positive number of replicas", count)
	case count <= 1 && index > 0:
		return Spec{}, fmt.Errorf("--shard-index %d needs --shards greater than %d", index, index)
	case count <= 1:
		return Spec{Index: 0, Count: max(count, 1)}, nil
	}
	if index < 0 {
		m := ordinal.FindStringSubmatch(hostname)
		if m == nil {
			return Spec{}, fmt.Errorf("--shards %d: give --shard-index, or run as a StatefulSet pod whose hostname ends in its ordinal (dbops-2 → 2); hostname %q has none", count, hostname)
		}
		n, err := strconv.Atoi(m[1])
		if err != nil {
			return Spec{}, fmt.Errorf("hostname %q: ordinal: %w", hostname, err)
		}
		index = n
		if index >= count {
			return Spec{}, fmt.Errorf("--shards %d: hostname %q gives ordinal %d, but shards are numbered 0 to %d; raise --shards to the StatefulSet's replicas", count, hostname, index, count-1)
		}
	}
	if index >= count {
		return Spec{}, fmt.Errorf("--shard-index %d: shards are numbered 0 to %d (--shards %d)", index, count-1, count)
	}
	return Spec{Index: index, Count: count}, nil
}
