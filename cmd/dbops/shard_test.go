package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile/loop"
	"github.com/amanat/dbops/reconcile/shard"
)

// TestRunShards runs `dbops run --shards N` processes over stacks on one
// throwaway PostgreSQL, each stack in its own database. With 2 shards the
// two processes own disjoint sets of stacks that together cover all of
// them, exactly as shard.Of says; each stack's migration is applied by its
// owner and no other process ever reconciles it (no series of it in the
// other's metrics). Then the fleet is resized to 3 processes and a new
// migration added: ownership follows shard.Of(name, 3) and each stack's new
// migration is applied exactly once.
func TestRunShards(t *testing.T) {
	const stacks = 8
	f := clitest.NewFixture(t, map[string]string{"00001_a.sql": clitest.Mig("CREATE TABLE a (id int);", "DROP TABLE a;")})
	var names []string
	var yaml strings.Builder
	for i := range stacks {
		name := fmt.Sprintf("svc-%02d", i)
		names = append(names, name)
		env := fmt.Sprintf("PG_URL_%d", i)
		f.Env[env] = testsrv.PostgresDB(t)
		if i > 0 {
			yaml.WriteString("---\n")
		}
		yaml.WriteString(clitest.StackYAML(name, "  postgres:\n    url: ${"+env+"}\n    migrations: {dir: ./migrations}\n"))
	}
	f.Write(t, "stacks.yaml", yaml.String())

	runFleet := func(n int, wantVersion int64) {
		t.Helper()
		addrs := freeAddrs(t, n)
		procs := make([]*runProcess, n)
		for i := range n {
			procs[i] = startRun(t, f, addrs[i], "--interval", "500ms", "--shards", fmt.Sprint(n), "--shard-index", fmt.Sprint(i))
		}
		owner := map[string]int{}
		for i, p := range procs {
			want := ownedBy(names, n, i)
			var st loop.Status
			eventually(t, fmt.Sprintf("shard %d/%d reconciles its stacks %v", i, n, want), func() bool {
				if p.exited() {
					t.Fatalf("dbops run exited early (code %d):\n%s", p.code, p.output())
				}
				st = fullStatus(t, p)
				if st.Revision == nil || len(st.Stacks) != len(want) {
					return false
				}
				for _, s := range st.Stacks {
					if len(s.Conditions) == 0 || s.Conditions[0].Reason != loop.ReasonSucceeded || resourceState(s, "postgres") != loop.StateInSync {
						return false
					}
				}
				return true
			})
			if st.Shard.Index != i || st.Shard.Count != n || st.Shard.Total != stacks {
				t.Errorf("process %d /status shard = %+v, want index %d of %d, %d stacks in total", i, st.Shard, i, n, stacks)
			}
			if !slices.Equal(st.Shard.Owned, want) {
				t.Errorf("process %d owns %v, want %v", i, st.Shard.Owned, want)
			}
			for _, s := range st.Stacks {
				if prev, ok := owner[s.Name]; ok {
					t.Errorf("stack %s reconciled by processes %d and %d", s.Name, prev, i)
				}
				owner[s.Name] = i
			}
			m := p.get(t, "/metrics")
			if got := metricSum(m, "dbops_shard_stack_owned"); got != float64(len(want)) {
				t.Errorf("process %d: dbops_shard_stack_owned sums to %v, want %d", i, got, len(want))
			}
			if !strings.Contains(m, fmt.Sprintf(`dbops_shard_info{shard="%d",shards="%d"} 1`, i, n)) {
				t.Errorf("process %d: no dbops_shard_info for shard %d of %d in /metrics", i, i, n)
			}
			for _, name := range names {
				series := `stack="` + name + `"`
				if mine := slices.Contains(want, name); !mine && strings.Contains(m, series) {
					t.Errorf("process %d has metrics of %s, which shard %d owns", i, name, shard.Of(name, n))
				}
			}
		}
		if len(owner) != stacks {
			t.Errorf("%d shards reconciled %d of %d stacks: %v", n, len(owner), stacks, owner)
		}
		// Each change applied once in all: by the stack's owner.
		var applied float64
		for _, p := range procs {
			applied += metricSum(p.get(t, "/metrics"), "dbops_changes_applied_total")
		}
		if want := float64(stacks); applied != want {
			t.Errorf("%d shards applied %v changes in all, want %v (one new migration per stack)", n, applied, want)
		}
		for i := range stacks {
			if v := clitest.DBVersion(t, f.Env[fmt.Sprintf("PG_URL_%d", i)]); v != wantVersion {
				t.Errorf("%s at version %d, want %d", names[i], v, wantVersion)
			}
		}
		for _, p := range procs {
			if code := p.stop(t); code != 0 {
				t.Errorf("dbops run exited %d after SIGTERM:\n%s", code, p.output())
			}
		}
	}
	runFleet(2, 1)

	// Resize: a third replica and a new migration for every stack.
	f.Write(t, "migrations/00002_b.sql", clitest.Mig("CREATE TABLE b (id int);", "DROP TABLE b;"))
	runFleet(3, 2)
}

// TestRunShardIndexFromHostname: without --shard-index the index is the
// StatefulSet ordinal ending the hostname; on a host without one dbops run
// refuses to start and says what to give.
func TestRunShardIndexFromHostname(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	f := clitest.NewFixture(t, nil)
	f.Write(t, "stack.yaml", clitest.StackYAML("one", "  redis:\n    url: redis://127.0.0.1:1/0\n    config: {hz: 10}\n"))
	const shards = 1000 // any ordinal a test machine's hostname may end in
	want, resolveErr := shard.Resolve(shards, -1, host)
	p := startRun(t, f, freeAddrs(t, 1)[0], "--shards", fmt.Sprint(shards))
	if resolveErr != nil {
		code, ok := p.wait(30 * time.Second)
		if !ok || code != 1 || !strings.Contains(p.output(), "give --shard-index") {
			t.Fatalf("hostname %q has no ordinal: dbops run exited %d (exited %v), want 1 and a message asking for --shard-index:\n%s", host, code, ok, p.output())
		}
		return
	}
	p.waitUp(t)
	if st := fullStatus(t, p); st.Shard.Index != want.Index || st.Shard.Count != shards {
		t.Errorf("hostname %q: /status shard %+v, want index %d of %d", host, st.Shard, want.Index, shards)
	}
}

// ownedBy lists, in order, the names shard index of n owns.
func ownedBy(names []string, n, index int) []string {
	var out []string
	for _, name := range names {
		if shard.Of(name, n) == index {
			out = append(out, name)
		}
	}
	return out
}

// fullStatus is the process's /status; the zero value while it is not
// answering yet.
func fullStatus(t *testing.T, p *runProcess) loop.Status {
	t.Helper()
	res, err := httpClient.Get("http://" + p.addr + "/status")
	if err != nil {
		return loop.Status{}
	}
	defer res.Body.Close()
	var st loop.Status
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatalf("/status: %v", err)
	}
	return st
}
