package source

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testDebounce = 50 * time.Millisecond

// waitChanged waits for a Changed signal, then lets stragglers of the same
// burst arrive and drops them, so the next wait sees only new events.
func waitChanged(t *testing.T, d *Dir, what string) {
	t.Helper()
	select {
	case <-d.Changed():
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no Changed signal", what)
	}
	time.Sleep(4 * testDebounce)
	select {
	case <-d.Changed():
	default:
	}
}

func write(t *testing.T, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(content), 0o644))
}

// appYAML is a stack document naming ../migrations, marked with v.
func appYAML(v string) string {
	return "# " + v + "\nspec:\n  postgres:\n    migrations: {dir: ../migrations}\n"
}

func TestDir(t *testing.T) {
	src := t.TempDir()
	write(t, src, "stacks/app.yaml", appYAML("v1"))
	write(t, src, "migrations/001.sql", "-- 1\n")
	write(t, src, ".git/HEAD", "ref: refs/heads/main\n")
	must(t, os.Symlink("app.yaml", filepath.Join(src, "stacks/current.yaml")))
	cache := t.TempDir()
	d, err := NewDir(DirOptions{Dir: src, Path: "stacks", CacheDir: cache, Debounce: testDebounce})
	must(t, err)
	defer d.Close()

	r1 := fetch(t, d)
	if !strings.HasPrefix(r1.ID, "sha256:") || len(r1.ID) != len("sha256:")+64 {
		t.Fatalf("ID %q, want sha256:<hex>", r1.ID)
	}
	if r1.Root != filepath.Join(cache, "snap-"+strings.TrimPrefix(r1.ID, "sha256:")) || r1.Path != filepath.Join(r1.Root, "stacks") {
		t.Fatalf("unexpected Root/Path: %+v", r1)
	}
	wantFile(t, r1.Path, "app.yaml", appYAML("v1"))
	wantFile(t, r1.Root, "migrations/001.sql", "-- 1\n")
	wantMissing(t, r1.Root, ".git")
	if link, err := os.Readlink(filepath.Join(r1.Path, "current.yaml")); err != nil || link != "app.yaml" {
		t.Fatalf("current.yaml: link %q, err %v; want a symlink to app.yaml", link, err)
	}
	if r := fetch(t, d); r != r1 {
		t.Fatalf("no change: got %+v, want %+v", r, r1)
	}
	// Dot-folders are not part of the revision, nor is anything that is
	// not a stack or a migration file a stack names.
	write(t, src, ".git/HEAD", "ref: refs/heads/other\n")
	write(t, src, "stacks/dbops.log", "a log line\n")
	write(t, src, "backups/shop-pg-20250101T000000Z.dump", "dump")
	write(t, src, "migrations/notes.txt", "notes")
	write(t, src, "other/00009_unused.sql", "-- not named by any stack\n")
	if r := fetch(t, d); r != r1 {
		t.Fatalf("change outside the stacks and their migrations: got %+v, want %+v", r, r1)
	}
	wantMissing(t, r1.Path, "dbops.log")
	wantMissing(t, r1.Root, "backups")

	seen := map[string]bool{r1.ID: true}
	step := func(what string, change func()) Revision {
		t.Helper()
		change()
		waitChanged(t, d, what)
		r := fetch(t, d)
		if seen[r.ID] {
			t.Fatalf("%s: revision %s seen before, want a new one", what, r.ID)
		}
		seen[r.ID] = true
		if again := fetch(t, d); again != r {
			t.Fatalf("%s: second Fetch %+v, want %+v", what, again, r)
		}
		return r
	}

	r2 := step("write", func() { write(t, src, "stacks/app.yaml", appYAML("v2")) })
	wantFile(t, r2.Path, "app.yaml", appYAML("v2"))
	wantFile(t, r1.Path, "app.yaml", appYAML("v1")) // the old snapshot is intact

	r3 := step("rename-over save", func() {
		tmp := filepath.Join(src, "stacks", ".app.yaml.swp")
		must(t, os.WriteFile(tmp, []byte(appYAML("v3")), 0o644))
		must(t, os.Rename(tmp, filepath.Join(src, "stacks", "app.yaml")))
	})
	wantFile(t, r3.Path, "app.yaml", appYAML("v3"))
	wantMissing(t, r3.Path, ".app.yaml.swp")

	r4 := step("delete", func() { must(t, os.Remove(filepath.Join(src, "migrations", "001.sql"))) })
	wantMissing(t, r4.Root, "migrations/001.sql")
	wantFile(t, r2.Root, "migrations/001.sql", "-- 1\n")

	// An empty new subfolder is no part of a revision; it is watched.
	must(t, os.Mkdir(filepath.Join(src, "stacks", "prod"), 0o755))
	waitChanged(t, d, "new subfolder")
	if r := fetch(t, d); r != r4 {
		t.Fatalf("an empty folder made a new revision: %+v", r)
	}

	r6 := step("file in the new subfolder", func() { write(t, src, "stacks/prod/db.yaml", "prod\n") })
	wantFile(t, r6.Path, "prod/db.yaml", "prod\n")
	r7 := step("file in a nested new subfolder", func() {
		must(t, os.MkdirAll(filepath.Join(src, "stacks", "a", "b"), 0o755))
		waitChanged(t, d, "nested mkdir")
		write(t, src, "stacks/a/b/c.yaml", "deep\n")
	})
	wantFile(t, r7.Path, "a/b/c.yaml", "deep\n")
	r8 := step("mode change", func() { must(t, os.Chmod(filepath.Join(src, "stacks/a/b/c.yaml"), 0o600)) })
	if fi, err := os.Stat(filepath.Join(r8.Path, "a/b/c.yaml")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode not kept: %v %v", fi, err)
	}

	// Going back to earlier content gives the earlier ID.
	must(t, os.RemoveAll(filepath.Join(src, "stacks", "a")))
	waitChanged(t, d, "remove folder")
	if r := fetch(t, d); r.ID != r6.ID {
		t.Fatalf("content back to r6: ID %s, want %s", r.ID, r6.ID)
	}

	d.Release(r6.ID)
	for _, r := range []Revision{r1, r2, r3, r4, r7, r8} {
		if _, err := os.Stat(r.Root); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("released snapshot %s still there (err %v)", r.Root, err)
		}
	}
	wantFile(t, r6.Path, "prod/db.yaml", "prod\n")
	if names := cacheEntries(t, cache); len(names) != 1 {
		t.Fatalf("cache holds %v, want only the kept snapshot", names)
	}
	must(t, d.Close())
	must(t, d.Close())
}

func TestDirMissingPathAndCacheInside(t *testing.T) {
	src := t.TempDir()
	write(t, src, "app.yaml", "x\n")
	d, err := NewDir(DirOptions{Dir: src, Path: "stacks", CacheDir: filepath.Join(src, ".cache")})
	must(t, err)
	defer d.Close()
	if err := fetchErr(t, d); !strings.Contains(err.Error(), "stacks") {
		t.Fatalf("error %q should name the missing path", err)
	}

	// A cache dir inside the watched folder is neither hashed nor copied.
	d2, err := NewDir(DirOptions{Dir: src, CacheDir: filepath.Join(src, "cache")})
	must(t, err)
	defer d2.Close()
	r1 := fetch(t, d2)
	wantMissing(t, r1.Root, "cache")
	if r2 := fetch(t, d2); r2 != r1 {
		t.Fatalf("second Fetch %+v, want %+v", r2, r1)
	}

	if _, err := NewDir(DirOptions{Dir: filepath.Join(src, "missing"), CacheDir: t.TempDir()}); err == nil {
		t.Fatal("NewDir of a missing folder succeeded")
	}
}

// TestConcurrentFetch runs Fetch from several goroutines while files change
// (meaningful with -race): every Fetch returns a complete snapshot.
func TestConcurrentFetch(t *testing.T) {
	src := t.TempDir()
	write(t, src, "app.yaml", "0\n")
	d, err := NewDir(DirOptions{Dir: src, CacheDir: t.TempDir(), Debounce: time.Millisecond})
	must(t, err)
	defer d.Close()
	o := newOrigin(t)
	o.commit(map[string]string{"app.yaml": "git\n"}, nil)
	g, err := NewGit(GitOptions{URL: o.bare, Ref: "main", CacheDir: t.TempDir()})
	must(t, err)

	errs := make(chan error, 64)
	done := make(chan struct{})
	for range 4 {
		go func() {
			for i := 0; i < 10; i++ {
				for _, s := range []Source{d, g} {
					rev, err := s.Fetch(t.Context())
					if err == nil {
						_, err = os.Stat(filepath.Join(rev.Path, "app.yaml"))
					}
					if err != nil {
						errs <- err
					}
				}
			}
			done <- struct{}{}
		}()
	}
	for i := range 20 {
		write(t, src, "app.yaml", strings.Repeat("x", i)+"\n")
	}
	for range 4 {
		<-done
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	last := fetch(t, d)
	d.Release(last.ID)
	wantFile(t, last.Path, "app.yaml", strings.Repeat("x", 19)+"\n")
}
