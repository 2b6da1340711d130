package loop

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/source"
)

func TestMain(m *testing.M) { testsrv.Main(m) }

// repo is a git repository the tests commit to; the loop fetches it by path.
type repo struct {
	t    *testing.T
	dir  string
	repo *git.Repository
}

func newRepo(t *testing.T) *repo {
	t.Helper()
	dir := t.TempDir()
	r, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}})
	if err != nil {
		t.Fatal(err)
	}
	return &repo{t: t, dir: dir, repo: r}
}

// commit writes files ("" deletes one) and commits them.
func (r *repo) commit(files map[string]string) string {
	r.t.Helper()
	for name, body := range files {
		p := filepath.Join(r.dir, name)
		if body == "" {
			os.Remove(p)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	wt, err := r.repo.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		r.t.Fatal(err)
	}
	sig := &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}
	h, err := wt.Commit("change", &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		r.t.Fatal(err)
	}
	return h.String()
}

func (r *repo) source(t *testing.T) *source.Git {
	t.Helper()
	g, err := source.NewGit(source.GitOptions{URL: r.dir, Ref: "main", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func newLoop(t *testing.T, src Source, logs *testsrv.Buffer) *Loop {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("loop logs:\n%s", logs.String())
		}
	})
	return New(Options{
		Source:    src,
		Interval:  time.Hour, // tests drive cycles themselves unless they say otherwise
		Logger:    slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Reconcile: reconcile.Options{ConnectTimeout: 2 * time.Second},
		Holder:    "test",
		RetryBase: 50 * time.Millisecond,
		RetryMax:  200 * time.Millisecond,
	})
}

// cycle runs one cycle and waits for every stack to finish.
func cycle(t *testing.T, l *Loop) {
	t.Helper()
	l.Cycle(context.Background())
	l.Wait()
}

// eventually polls cond every 20ms until it holds or a generous deadline
// passes; it bounds a wait, it does not measure speed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func redisStack(name, url, maxmemory, extra string) string {
	return "apiVersion: dbops/v1\nkind: Stack\nmetadata:\n  name: " + name + "\nspec:\n" + extra +
		"  redis:\n    url: " + url + "\n    config:\n      maxmemory: " + maxmemory + "\n      maxmemory-policy: allkeys-lru\n"
}

func stateOf(l *Loop, stack string) (StackStatus, bool) {
	for _, s := range l.Status().Stacks {
		if s.Name == stack {
			return s, true
		}
	}
	return StackStatus{}, false
}
