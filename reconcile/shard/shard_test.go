package shard

import (
	"fmt"
	"strings"
	"testing"
)

// The reference vectors of Jump Consistent Hash (as published with
// dgryski/go-jump and Guava's consistentHash tests).
func TestJumpReferenceVectors(t *testing.T) {
	for _, tc := range []struct {
		key  uint64
		n    int
		want int
	}{
		{1, 1, 0},
		{42, 57, 43},
		{0xDEAD10CC, 1, 0},
		{0xDEAD10CC, 666, 361},
		{256, 1024, 520},
	} {
		if got := jump(tc.key, tc.n); got != tc.want {
			t.Errorf("jump(%d, %d) = %d, want %d", tc.key, tc.n, got, tc.want)
		}
	}
}

// The documented mapping must never change: a replica of a new version must
// agree with one of the old during a rolling update.
func TestOfIsStable(t *testing.T) {
	for _, tc := range []struct {
		name       string
		n2, n3, n4 int
	}{
		{"billing", 1, 2, 2},
		{"orders", 0, 0, 3},
		{"search", 0, 0, 0},
		{"users", 1, 1, 3},
		{"amanat-dev", 1, 2, 2},
		{"fleet-000", 1, 2, 3},
		{"fleet-001", 0, 0, 0},
		{"fleet-002", 1, 1, 3},
	} {
		for n, want := range map[int]int{1: 0, 2: tc.n2, 3: tc.n3, 4: tc.n4} {
			if got := Of(tc.name, n); got != want {
				t.Errorf("Of(%q, %d) = %d, want %d", tc.name, n, got, want)
			}
		}
	}
}

// Growing from n to n+1 shards moves only stacks to the new shard, and about
// 1/(n+1) of them; every shard gets a fair share.
func TestGrowingMovesFew(t *testing.T) {
	const stacks = 1000
	for n := 1; n <= 8; n++ {
		moved := 0
		count := make([]int, n+1)
		for i := range stacks {
			name := fmt.Sprintf("stack-%04d", i)
			before, after := Of(name, n), Of(name, n+1)
			count[after]++
			if before != after {
				moved++
				if after != n {
					t.Errorf("%s moved from shard %d to %d when growing to %d shards; only moves to the new shard are expected", name, before, after, n+1)
				}
			}
		}
		want := stacks / (n + 1)
		if moved < want/2 || moved > want*3/2 {
			t.Errorf("growing %d -> %d shards moved %d of %d stacks, want about %d", n, n+1, moved, stacks, want)
		}
		for s, c := range count {
			if c < want/2 || c > want*3/2 {
				t.Errorf("%d shards: shard %d owns %d of %d stacks, want about %d", n+1, s, c, stacks, want)
			}
		}
	}
}

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		count, index int
		host         string
		want         Spec
		err          string
	}{
		{count: 0, index: -1, host: "laptop", want: Spec{0, 1}},
		{count: 1, index: -1, host: "laptop", want: Spec{0, 1}},
		{count: 2, index: 1, host: "laptop", want: Spec{1, 2}},
		{count: 3, index: -1, host: "dbops-2", want: Spec{2, 3}},
		{count: 3, index: -1, host: "dbops-0", want: Spec{0, 3}},
		{count: 3, index: 0, host: "dbops-2", want: Spec{0, 3}}, // the flag wins
		{count: 2, index: -1, host: "laptop", err: "give --shard-index, or run as a StatefulSet pod"},
		{count: 2, index: -1, host: "dbops-7f9c8-x2kq", err: "has none"},
		{count: 2, index: -1, host: "dbops-2", err: "ordinal 2, but shards are numbered 0 to 1"},
		{count: 2, index: 2, host: "x", err: "--shard-index 2: shards are numbered 0 to 1"},
		{count: -1, index: -1, host: "x", err: "--shards -1"},
		{count: 0, index: 1, host: "x", err: "--shard-index 1 needs --shards"},
	} {
		got, err := Resolve(tc.count, tc.index, tc.host)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("Resolve(%d, %d, %q) error %v, want one containing %q", tc.count, tc.index, tc.host, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("Resolve(%d, %d, %q): %v", tc.count, tc.index, tc.host, err)
		case tc.err == "" && got != tc.want:
			t.Errorf("Resolve(%d, %d, %q) = %+v, want %+v", tc.count, tc.index, tc.host, got, tc.want)
		}
	}
}

func TestOwnsPartitions(t *testing.T) {
	for n := 1; n <= 5; n++ {
		for i := range 200 {
			name := fmt.Sprintf("s%d", i)
			owners := 0
			for idx := range n {
				if (Spec{Index: idx, Count: n}).Owns(name) {
					owners++
				}
			}
			if owners != 1 {
				t.Errorf("%d shards: %s owned by %d replicas, want exactly 1", n, name, owners)
			}
		}
	}
}
