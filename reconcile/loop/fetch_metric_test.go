package loop

import (
	"context"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile/source"
)

// TestFetchFailuresCounted: every failed fetch counts in
// dbops_source_fetch_failures_total (README) and shows in /status, and a
// good fetch does not count.
func TestFetchFailuresCounted(t *testing.T) {
	tests := []struct {
		name, ref string
		want      string
	}{
		{"missing branch", "no-such-branch", "dbops_source_fetch_failures_total 2\n"},
		{"good branch", "main", "dbops_source_fetch_failures_total 0\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRepo(t)
			r.commit(map[string]string{"README": "no stacks\n"})
			src, err := source.NewGit(source.GitOptions{URL: r.dir, Ref: tc.ref, CacheDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			var logs testsrv.Buffer
			l := newLoop(t, src, &logs)
			for range 2 {
				l.Cycle(context.Background())
				l.Wait()
			}
			if m := scrape(t, l); !strings.Contains(m, tc.want) {
				t.Errorf("metrics lack %q:\n%s", tc.want, grep(m, "fetch"))
			}
			if failed := l.Status().FetchError != ""; failed != (tc.ref != "main") {
				t.Errorf("/status fetchError = %q", l.Status().FetchError)
			}
		})
	}
}
