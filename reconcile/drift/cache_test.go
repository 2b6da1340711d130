package drift

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestCacheKeyFollowsMigrations: the expected schema is rebuilt when an
// applied migration's file, the server's major version or the scratch
// location changes, and only then.
func TestCacheKeyFollowsMigrations(t *testing.T) {
	url, db, m := migrated(t)
	ctx := context.Background()
	cache := &MemCache{}
	first, err := Check(ctx, m, db, url, true, cache)
	if err != nil {
		t.Fatal(err)
	}
	steps, err := replaySteps(m, []int64{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	base, err := Key(m, steps, 18, "same-server")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		steps   int // of the applied ones
		major   int
		scratch string
		same    bool
	}{
		{"same set", 2, 18, "same-server", true},
		{"other major", 2, 17, "same-server", false},
		{"other scratch server", 2, 18, "ci:5432/postgres", false},
		{"fewer migrations", 1, 18, "same-server", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := Key(m, steps[:tc.steps], tc.major, tc.scratch)
			if err != nil {
				t.Fatal(err)
			}
			if (k == base) != tc.same {
				t.Errorf("key equal to the base key: %v, want %v", k == base, tc.same)
			}
		})
	}
	// An applied migration edited in place (a comment added): a new key, so
	// the next check replays instead of trusting the cache.
	p := filepath.Join(m.Path, "00001_users.sql")
	body, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, append([]byte("-- edited\n"), body...), 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := Check(ctx, m, db, url, true, cache)
	if err != nil {
		t.Fatal(err)
	}
	if again.CacheKey == first.CacheKey || again.Expected != FromScratch {
		t.Errorf("after editing a migration: key %s (was %s), expected from %s; want a new key, from scratch", again.CacheKey, first.CacheKey, again.Expected)
	}
	if cache.Len() != 2 {
		t.Errorf("cache holds %d schemas, want 2", cache.Len())
	}
}

// TestDirCache: a schema written is read back whole; a missing, corrupt or
// foreign file is a miss, never an error.
func TestDirCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "drift")
	c := DirCache{Dir: dir}
	s := Schema{
		key("table", "users"):        {Kind: "table", Name: "users", Def: "r p"},
		key("column", "users.email"): {Kind: "column", Name: "users.email", Def: "text not null"},
	}
	k := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if _, ok := c.Get(k); ok {
		t.Fatal("hit in an empty cache")
	}
	if err := c.Put(k, s); err != nil {
		t.Fatal(err)
	}
	got, ok := c.Get(k)
	if !ok || len(got) != len(s) || got[key("column", "users.email")] != s[key("column", "users.email")] {
		t.Fatalf("read back %v (hit %v), want %v", got, ok, s)
	}
	info, err := os.Stat(filepath.Join(dir, k+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("cache file mode %o, want 600", perm)
	}
	tests := []struct{ name, body string }{
		{"corrupt", "{not json"},
		{"foreign key", `{"key":"other","objects":[]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, k+".json"), []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, ok := c.Get(k); ok {
				t.Errorf("a %s file is a hit", tc.name)
			}
		})
	}
}

// TestMemCacheEvicts keeps the most recently used schemas.
func TestMemCacheEvicts(t *testing.T) {
	c := &MemCache{Max: 2}
	for _, k := range []string{"a", "b"} {
		c.Put(k, Schema{})
	}
	c.Get("a") // b is now the least recently used
	c.Put("c", Schema{})
	for k, want := range map[string]bool{"a": true, "b": false, "c": true} {
		if _, ok := c.Get(k); ok != want {
			t.Errorf("%s cached: %v, want %v", k, ok, want)
		}
	}
}
