package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// origin is a bare repository on disk with a work repository pushing to it.
type origin struct {
	t    *testing.T
	bare string
	work string
	repo *git.Repository
}

func newOrigin(t *testing.T) *origin {
	t.Helper()
	bare := filepath.Join(t.TempDir(), "origin.git")
	_, err := git.PlainInitWithOptions(bare, &git.PlainInitOptions{
		Bare:        true,
		InitOptions: git.InitOptions{DefaultBranch: plumbing.Main},
	})
	must(t, err)
	o := &origin{t: t, bare: bare}
	o.newWork()
	return o
}

// newWork starts a work repository with no history, so its next push
// rewrites the origin's history.
func (o *origin) newWork() {
	o.t.Helper()
	o.work = o.t.TempDir()
	repo, err := git.PlainInitWithOptions(o.work, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.Main},
	})
	must(o.t, err)
	_, err = repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{o.bare}})
	must(o.t, err)
	o.repo = repo
}

// commit writes files (content "" deletes the file; a "->" prefix makes a
// symlink), commits them, signed when key is not nil, and pushes (forced).
func (o *origin) commit(files map[string]string, key *openpgp.Entity) string {
	o.t.Helper()
	for name, content := range files {
		p := filepath.Join(o.work, filepath.FromSlash(name))
		must(o.t, os.MkdirAll(filepath.Dir(p), 0o755))
		os.Remove(p)
		switch {
		case content == "":
		case strings.HasPrefix(content, "->"):
			must(o.t, os.Symlink(strings.TrimPrefix(content, "->"), p))
		default:
			perm := os.FileMode(0o644)
			if strings.HasSuffix(name, ".sh") {
				perm = 0o755
			}
			must(o.t, os.WriteFile(p, []byte(content), perm))
		}
	}
	wt, err := o.repo.Worktree()
	must(o.t, err)
	must(o.t, wt.AddWithOptions(&git.AddOptions{All: true}))
	sig := &object.Signature{Name: "Test", Email: "test@example.com", When: time.Now()}
	h, err := wt.Commit("change", &git.CommitOptions{Author: sig, Committer: sig, SignKey: key})
	must(o.t, err)
	err = o.repo.Push(&git.PushOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{"+refs/heads/main:refs/heads/main"},
	})
	must(o.t, err)
	return h.String()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func fetch(t *testing.T, s Source) Revision {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rev, err := s.Fetch(ctx)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return rev
}

func fetchErr(t *testing.T, s Source) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rev, err := s.Fetch(ctx)
	if err == nil {
		t.Fatalf("Fetch succeeded with %+v, want an error", rev)
	}
	return err
}

// wantFile checks that the file at root/rel holds content.
func wantFile(t *testing.T, root, rel, content string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	if string(b) != content {
		t.Fatalf("%s = %q, want %q", rel, b, content)
	}
}

func wantMissing(t *testing.T, root, rel string) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(root, filepath.FromSlash(rel))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s exists in %s (err %v), want it missing", rel, root, err)
	}
}

// cacheEntries lists the names in a cache dir other than the clone.
func cacheEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	must(t, err)
	var names []string
	for _, e := range entries {
		if e.Name() != repoDir {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestGitLocal(t *testing.T) {
	o := newOrigin(t)
	first := o.commit(map[string]string{
		"stacks/app.yaml":          "name: v1\n",
		"stacks/current.yaml":      "->app.yaml",
		"migrations/001_init.sql":  "-- +goose Up\n",
		"scripts/check.sh":         "#!/bin/sh\n",
		"README.md":                "hello\n",
		"stacks/nested/other.yaml": "other\n",
	}, nil)
	cache := t.TempDir()
	g, err := NewGit(GitOptions{URL: o.bare, Ref: "main", Path: "stacks", CacheDir: cache})
	must(t, err)
	defer g.Close()
	if g.Changed() != nil {
		t.Fatal("a git source's Changed channel should be nil")
	}

	r1 := fetch(t, g)
	if r1.ID != first {
		t.Fatalf("ID = %s, want head %s", r1.ID, first)
	}
	if r1.Root != filepath.Join(cache, "rev-"+first) || r1.Path != filepath.Join(r1.Root, "stacks") {
		t.Fatalf("unexpected Root/Path: %+v", r1)
	}
	wantFile(t, r1.Path, "app.yaml", "name: v1\n")
	wantFile(t, r1.Path, "nested/other.yaml", "other\n")
	wantFile(t, r1.Root, "migrations/001_init.sql", "-- +goose Up\n")
	if link, err := os.Readlink(filepath.Join(r1.Path, "current.yaml")); err != nil || link != "app.yaml" {
		t.Fatalf("current.yaml: link %q, err %v; want a symlink to app.yaml", link, err)
	}
	if fi, err := os.Stat(filepath.Join(r1.Root, "scripts/check.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("check.sh: %v, %v; want mode 0755", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(r1.Root, "README.md")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("README.md: %v, %v; want mode 0644", fi, err)
	}
	if again := fetch(t, g); again != r1 {
		t.Fatalf("unchanged head: got %+v, want %+v", again, r1)
	}

	second := o.commit(map[string]string{
		"stacks/app.yaml":         "name: v2\n",
		"migrations/001_init.sql": "",
		"migrations/002_next.sql": "-- +goose Up\n-- v2\n",
	}, nil)
	r2 := fetch(t, g)
	if r2.ID != second || r2.Root == r1.Root {
		t.Fatalf("after a new commit: got %+v, want ID %s in a new folder", r2, second)
	}
	wantFile(t, r2.Path, "app.yaml", "name: v2\n")
	wantFile(t, r2.Root, "migrations/002_next.sql", "-- +goose Up\n-- v2\n")
	wantMissing(t, r2.Root, "migrations/001_init.sql")
	// The last known good revision's files are untouched until released.
	wantFile(t, r1.Path, "app.yaml", "name: v1\n")
	wantFile(t, r1.Root, "migrations/001_init.sql", "-- +goose Up\n")
	wantMissing(t, r1.Root, "migrations/002_next.sql")

	g.Release(r1.ID, r2.ID)
	wantFile(t, r1.Path, "app.yaml", "name: v1\n")
	g.Release(r2.ID)
	if _, err := os.Stat(r1.Root); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("released snapshot %s still there (err %v)", r1.Root, err)
	}
	wantFile(t, r2.Path, "app.yaml", "name: v2\n")
	if names := cacheEntries(t, cache); len(names) != 1 || names[0] != "rev-"+second {
		t.Fatalf("cache dir holds %v, want only rev-%s", names, second)
	}

	// A released revision that comes back is materialised again.
	g.Release()
	if r := fetch(t, g); r != r2 {
		t.Fatalf("after releasing everything: got %+v, want %+v", r, r2)
	}
	wantFile(t, r2.Path, "app.yaml", "name: v2\n")
}

func TestGitFileURLAndRoot(t *testing.T) {
	o := newOrigin(t)
	head := o.commit(map[string]string{"app.yaml": "x\n"}, nil)
	g, err := NewGit(GitOptions{URL: "file://" + o.bare, Ref: "main", CacheDir: t.TempDir()})
	must(t, err)
	r := fetch(t, g)
	if r.ID != head || r.Path != r.Root {
		t.Fatalf("got %+v, want ID %s and Path == Root", r, head)
	}
	wantFile(t, r.Path, "app.yaml", "x\n")
}

func TestGitMissingPathAndRef(t *testing.T) {
	o := newOrigin(t)
	head := o.commit(map[string]string{"stacks/app.yaml": "x\n", "file.yaml": "y\n"}, nil)
	for _, p := range []string{"envs/prod", "file.yaml"} {
		g, err := NewGit(GitOptions{URL: o.bare, Ref: "main", Path: p, CacheDir: t.TempDir()})
		must(t, err)
		err = fetchErr(t, g)
		if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), head) {
			t.Fatalf("error %q should name the path %q and the commit %s", err, p, head)
		}
	}
	g, err := NewGit(GitOptions{URL: o.bare, Ref: "nope", CacheDir: t.TempDir()})
	must(t, err)
	if err := fetchErr(t, g); !strings.Contains(err.Error(), "nope") {
		t.Fatalf("error %q should name the missing ref", err)
	}
}

func TestGitForcePush(t *testing.T) {
	o := newOrigin(t)
	v1 := o.commit(map[string]string{"app.yaml": "v1\n"}, nil)
	o.commit(map[string]string{"app.yaml": "v2\n"}, nil)
	cache := t.TempDir()
	g, err := NewGit(GitOptions{URL: o.bare, Ref: "main", CacheDir: cache})
	must(t, err)
	r1 := fetch(t, g)
	wantFile(t, r1.Path, "app.yaml", "v2\n")
	// The clone is shallow: the parent commit was not fetched.
	clone, err := git.PlainOpen(filepath.Join(cache, repoDir))
	must(t, err)
	if _, err := clone.CommitObject(plumbing.NewHash(v1)); !errors.Is(err, plumbing.ErrObjectNotFound) {
		t.Fatalf("parent commit in the clone: err %v, want ErrObjectNotFound (depth 1)", err)
	}

	o.newWork() // a history that does not contain r1
	rewritten := o.commit(map[string]string{"app.yaml": "rewritten\n"}, nil)
	r2 := fetch(t, g)
	if r2.ID != rewritten {
		t.Fatalf("after a force push: ID %s, want %s", r2.ID, rewritten)
	}
	wantFile(t, r2.Path, "app.yaml", "rewritten\n")
	wantFile(t, r1.Path, "app.yaml", "v2\n")

	next := o.commit(map[string]string{"app.yaml": "after\n"}, nil)
	if r3 := fetch(t, g); r3.ID != next {
		t.Fatalf("after a commit on the rewritten history: ID %s, want %s", r3.ID, next)
	}
}

func TestGitReopensCache(t *testing.T) {
	o := newOrigin(t)
	head := o.commit(map[string]string{"app.yaml": "v1\n"}, nil)
	cache := t.TempDir()
	g, err := NewGit(GitOptions{URL: o.bare, Ref: "main", CacheDir: cache})
	must(t, err)
	r1 := fetch(t, g)
	// A leftover of a crash while writing a snapshot is not a snapshot.
	must(t, os.MkdirAll(filepath.Join(cache, ".tmp-rev-x-1", "half"), 0o755))
	g2, err := NewGit(GitOptions{URL: o.bare, Ref: "main", CacheDir: cache})
	must(t, err)
	if r := fetch(t, g2); r != r1 || r.ID != head {
		t.Fatalf("second process: got %+v, want %+v", r, r1)
	}
	if names := cacheEntries(t, cache); len(names) != 1 {
		t.Fatalf("cache dir holds %v, want only the snapshot", names)
	}
}

func TestNewGitOptionErrors(t *testing.T) {
	cache := t.TempDir()
	cases := []struct {
		name string
		opts GitOptions
		want string
	}{
		{"ssh without known_hosts", GitOptions{URL: "git@example.com:org/repo.git", Ref: "main", SSHKeyFile: "/k"}, "known_hosts"},
		{"ssh URL without known_hosts", GitOptions{URL: "ssh://git@example.com/org/repo.git", Ref: "main"}, "known_hosts"},
		{"token over ssh", GitOptions{URL: "git@example.com:org/repo.git", Ref: "main", TokenEnv: "T"}, "https"},
		{"both token sources", GitOptions{URL: "https://example.com/r.git", Ref: "main", TokenEnv: "T", TokenFile: "/t"}, "not both"},
		{"path escaping", GitOptions{URL: "https://example.com/r.git", Ref: "main", Path: "../x"}, "../x"},
		{"no ref", GitOptions{URL: "https://example.com/r.git"}, "ref"},
		{"missing key ring", GitOptions{URL: "https://example.com/r.git", Ref: "main", VerifyKeyRing: "/nonexistent/keys.asc"}, "key ring"},
		{"password hidden", GitOptions{URL: "https://u:s3cret@example.com/r.git", Ref: "bad..ref"}, "xxxxx"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.opts.CacheDir == "" {
				c.opts.CacheDir = cache
			}
			_, err := NewGit(c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}
