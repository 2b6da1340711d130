package loop

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile/source"
)

// countingSource is a real git source that counts its Release calls.
type countingSource struct {
	*source.Git
	releases atomic.Int64
}

func (c *countingSource) Release(keep ...string) {
	c.releases.Add(1)
	c.Git.Release(keep...)
}

// A no-change cycle does not list the snapshot cache once per stack (each
// stack cycle's end used to): with no fetch since the last release and the
// same revisions in use, there is nothing to delete. A new revision still
// gets the old snapshot deleted once no stack reads it.
func TestReleaseOncePerFetch(t *testing.T) {
	const stacks = 4
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	write := func(maxmemory string) map[string]string {
		files := map[string]string{}
		files["stacks/s0.yaml"] = redisStack("s0", rd.URL(), maxmemory, "")
		for i := 1; i < stacks; i++ { // one stack manages a parameter; the others observe the server
			files[fmt.Sprintf("stacks/s%d.yaml", i)] = fmt.Sprintf("apiVersion: dbops/v1\nkind: Stack\nmetadata:\n  name: s%d\nspec:\n  redis:\n    url: %s\n    config: {}\n", i, rd.URL())
		}
		return files
	}
	r := newRepo(t)
	r.commit(write("32mb"))
	cache := t.TempDir()
	g, err := source.NewGit(source.GitOptions{URL: r.dir, Ref: "main", CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	src := &countingSource{Git: g}
	var logs testsrv.Buffer
	l := newLoop(t, src, &logs)
	snapshots := func() int {
		entries, err := os.ReadDir(cache)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "rev-") { // source's gitPrefix
				n++
			}
		}
		return n
	}
	cycle(t, l)
	for c := range 3 {
		before := src.releases.Load()
		cycle(t, l)
		if n := src.releases.Load() - before; n > 1 {
			t.Errorf("no-change cycle %d over %d stacks: %d snapshot releases, want at most 1", c, stacks, n)
		}
	}
	first := snapshots()
	r.commit(write("48mb"))
	cycle(t, l)
	if first != 1 {
		t.Fatalf("%d snapshots in the cache folder after no-change cycles, want 1", first)
	}
	eventually(t, "the old revision's snapshot deleted", func() bool { return snapshots() == 1 })
}
