package loop

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/shard"
)

// Two loops, shards 0 and 1 of 2, over stacks with due backup jobs: each
// stack is backed up exactly once, by the loop that owns it, and each loop
// reports only its own stacks.
func TestShardsBackUpOnlyTheirStacks(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	dest := t.TempDir()
	params := map[string]string{"a": "hz", "b": "lfu-log-factor", "c": "lfu-decay-time", "d": "active-defrag-cycle-max"}
	files := map[string]string{}
	owned := [2][]string{}
	for name, param := range params {
		files["stacks/"+name+".yaml"] = "apiVersion: dbops/v1\nkind: Stack\nmetadata:\n  name: " + name +
			"\nspec:\n  redis:\n    url: " + rd.URL() + "\n    config:\n      " + param + ": \"11\"\n" +
			"  backups:\n    - {name: rdb, source: redis, schedule: \"@every 1h\", destination: " + filepath.Join(dest, name) + ", retention: {keepLast: 2}}\n"
		owned[shard.Of(name, 2)] = append(owned[shard.Of(name, 2)], name)
	}
	if len(owned[0]) == 0 || len(owned[1]) == 0 {
		t.Fatalf("the stack names do not spread over both shards: %v", owned)
	}
	r := newRepo(t)
	r.commit(files)
	var logs testsrv.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("loop logs:\n%s", logs.String())
		}
	})
	var loops [2]*Loop
	for i := range loops {
		loops[i] = New(Options{
			Source:    r.source(t),
			Interval:  time.Hour,
			Logger:    slog.New(slog.NewJSONHandler(&logs, nil)),
			Reconcile: reconcile.Options{ConnectTimeout: 2 * time.Second},
			Holder:    "test",
			Shard:     shard.Spec{Index: i, Count: 2},
		})
	}
	ctx := context.Background()
	for _, l := range loops {
		l.Cycle(ctx)
	}
	for _, l := range loops {
		l.Wait()
	}
	for i, l := range loops {
		st := l.Status()
		mine := map[string]bool{}
		for _, name := range owned[i] {
			mine[name] = true
		}
		metrics := scrape(t, l)
		for _, want := range []string{
			fmt.Sprintf(`dbops_shard_stacks{scope="owned"} %d`, len(owned[i])),
			fmt.Sprintf(`dbops_shard_stacks{scope="total"} %d`, len(params)),
			fmt.Sprintf(`dbops_shard_stack_owned{stack=%q} 1`, owned[i][0]),
			fmt.Sprintf(`dbops_shard_info{shard="%d",shards="2"} 1`, i),
		} {
			if !strings.Contains(metrics, want+"\n") {
				t.Errorf("shard %d: metrics lack %s:\n%s", i, want, grep(metrics, "dbops_shard"))
			}
		}
		if strings.Contains(metrics, fmt.Sprintf(`dbops_shard_stack_owned{stack=%q}`, owned[1-i][0])) {
			t.Errorf("shard %d: metrics name stack %s of the other shard", i, owned[1-i][0])
		}
		if len(st.Stacks) != len(owned[i]) {
			t.Errorf("shard %d reports %d stacks, want its %d: %v", i, len(st.Stacks), len(owned[i]), owned[i])
		}
		for _, s := range st.Stacks {
			if !mine[s.Name] {
				t.Errorf("shard %d reports stack %s of the other shard", i, s.Name)
				continue
			}
			if len(s.Backups) != 1 || s.Backups[0].Last == nil || !s.Backups[0].Last.OK {
				t.Errorf("shard %d, stack %s: backup status %+v, want one successful run", i, s.Name, s.Backups)
			}
		}
	}
	for name := range params {
		if got, _ := filepath.Glob(filepath.Join(dest, name, name+"-rdb-*.rdb")); len(got) != 1 {
			t.Errorf("stack %s: %d backups, want exactly 1 (by its owner): %v", name, len(got), got)
		}
	}
}
