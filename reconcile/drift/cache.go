package drift

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/spec"
)

// A Cache keeps expected schemas by Key, so the migrations are replayed
// into a scratch database only when they change. A cache that fails is a
// miss: the schema is built again.
type Cache interface {
	Get(key string) (Schema, bool)
	Put(key string, s Schema) error
}

// cacheFormat is part of every key: a change of the catalog queries or of
// how objects are shown makes every cached schema stale.
var cacheFormat = func() string {
	h := sha256.New()
	fmt.Fprintln(h, "dbops.drift.cache/v1")
	for _, q := range queries {
		fmt.Fprintln(h, q)
	}
	return hex.EncodeToString(h.Sum(nil))
}()

// Key identifies the expected schema of a migration set: the format and
// version table (ignored objects), each replayed migration's version, file
// and SHA-256 in order, the live server's major version (the deparsers'
// output differs between majors) and where the schema is built when not on
// the stack's own server. Credentials are never part of it, so a read-only
// role finds what a CREATEDB role built.
func Key(m *spec.Migrations, steps []postgres.Step, major int, scratch string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s.%s\nmajor %d\nscratch %s\n", cacheFormat, m.Format, m.Schema, m.Table, major, scratch)
	eng := postgres.EngineFor(m)
	for _, s := range steps {
		file := eng.File(s)
		sum, err := postgres.FileSum(m, file)
		if err != nil {
			return "", fmt.Errorf("checksum of migration %s: %w", file, err)
		}
		fmt.Fprintf(h, "%d %s %s\n", s.Version, file, sum)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DefaultDir is the CLI's cache folder: ${XDG_CACHE_HOME:-~/.cache}/dbops/drift
// on Linux (os.UserCacheDir elsewhere).
func DefaultDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder for expected schemas (set XDG_CACHE_HOME or HOME): %w", err)
	}
	return filepath.Join(d, "dbops", "drift"), nil
}

// DirCache keeps expected schemas as JSON files in a folder, one per key.
// Entries unread for MaxAge are removed when another is written.
type DirCache struct {
	Dir    string
	MaxAge time.Duration // [30 days]
}

type cacheFile struct {
	Key     string    `json:"key"`
	BuiltAt time.Time `json:"builtAt"`
	Objects []Object  `json:"objects"`
}

func (c DirCache) path(key string) string { return filepath.Join(c.Dir, key+".json") }

// Get reads a schema; a missing, unreadable or foreign file is a miss.
func (c DirCache) Get(k string) (Schema, bool) {
	p := c.path(k)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, false
	}
	var f cacheFile
	if json.Unmarshal(b, &f) != nil || f.Key != k {
		return nil, false
	}
	s := Schema{}
	for _, o := range f.Objects {
		s[key(o.Kind, o.Name)] = o
	}
	now := time.Now()
	_ = os.Chtimes(p, now, now) // last use, for pruning
	return s, true
}

// Put writes a schema atomically (a reader never sees half a file) with
// owner-only permissions, and prunes entries unused for MaxAge.
func (c DirCache) Put(key string, s Schema) error {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("expected-schema cache %s: %w", c.Dir, err)
	}
	f := cacheFile{Key: key, BuiltAt: time.Now().UTC(), Objects: make([]Object, 0, len(s))}
	for _, o := range s {
		f.Objects = append(f.Objects, o)
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.Dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("expected-schema cache %s: %w", c.Dir, err)
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("expected-schema cache %s: %w", c.Dir, err)
	}
	if err := os.Rename(tmp.Name(), c.path(key)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("expected-schema cache %s: %w", c.Dir, err)
	}
	c.prune()
	return nil
}

func (c DirCache) prune() {
	age := c.MaxAge
	if age <= 0 {
		age = 30 * 24 * time.Hour
	}
	entries, err := os.ReadDir(c.Dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > age {
			_ = os.Remove(filepath.Join(c.Dir, e.Name()))
		}
	}
}

// MemCache keeps the most recently used expected schemas in memory, for
// dbops run: a stack's schema is rebuilt only when its migrations change.
type MemCache struct {
	Max int // entries kept [64]

	mu    sync.Mutex
	order *list.List // of string keys, most recent first
	items map[string]*list.Element
	data  map[string]Schema
}

// Get returns a cached schema; callers must not modify it.
func (c *MemCache) Get(key string) (Schema, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return c.data[key], true
}

// Put keeps s, dropping the least recently used schema beyond Max.
func (c *MemCache) Put(key string, s Schema) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.order, c.items, c.data = list.New(), map[string]*list.Element{}, map[string]Schema{}
	}
	if e, ok := c.items[key]; ok {
		c.order.MoveToFront(e)
	} else {
		c.items[key] = c.order.PushFront(key)
	}
	c.data[key] = s
	max := c.Max
	if max <= 0 {
		max = 64
	}
	for c.order.Len() > max {
		last := c.order.Back()
		k := last.Value.(string)
		c.order.Remove(last)
		delete(c.items, k)
		delete(c.data, k)
	}
	return nil
}

// Len is the number of schemas kept.
func (c *MemCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.data)
}
