package risk

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
)

// Parse trees of migration files are cached by the SHA-256 of their SQL: a
// tree depends on nothing else (findings do, on the live database and the
// earlier migrations, so they are computed afresh from the tree every time).
// Every process keeps the trees it parsed in memory; SetCacheDir adds a
// folder where they outlive the process (the CLI's plan and apply).
var cache = struct {
	sync.Mutex
	dir string
	mem map[[32]byte][]byte
}{mem: map[[32]byte][]byte{}}

// memEntries bounds the memory cache; it starts afresh when full.
const memEntries = 4096

// SetCacheDir makes parse trees persist in dir (created when needed); ""
// keeps them in memory only.
func SetCacheDir(dir string) {
	cache.Lock()
	defer cache.Unlock()
	cache.dir = dir
}

// cacheKey is the hash of sql, of the parser that reads it and of what
// prune keeps (treeForm: change it with prune).
func cacheKey(sql string) [32]byte {
	return sha256.Sum256([]byte(parserVersion() + "\x00" + treeForm + "\x00" + sql))
}

// treeForm names what prune keeps of a tree.
const treeForm = "pruned-1"

var parserVersion = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/pganalyze/pg_query_go/v6" {
				return m.Path + "@" + m.Version
			}
		}
	}
	return "pg_query_go/v6"
})

// cacheGet returns the cached encoded tree of sql.
func cacheGet(key [32]byte) ([]byte, bool) {
	cache.Lock()
	b, ok := cache.mem[key]
	dir := cache.dir
	cache.Unlock()
	if ok || dir == "" {
		return b, ok
	}
	b, err := os.ReadFile(filepath.Join(dir, hex.EncodeToString(key[:])))
	if err != nil {
		return nil, false
	}
	cacheMem(key, b)
	return b, true
}

// cachePut stores an encoded tree. Failing to write the folder only costs
// a parse next time.
func cachePut(key [32]byte, b []byte) {
	cacheMem(key, b)
	cache.Lock()
	dir := cache.dir
	cache.Unlock()
	if dir == "" || os.MkdirAll(dir, 0o700) != nil {
		return
	}
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr != nil || cerr != nil {
		os.Remove(f.Name())
		return
	}
	if os.Rename(f.Name(), filepath.Join(dir, hex.EncodeToString(key[:]))) != nil {
		os.Remove(f.Name())
	}
}

func cacheMem(key [32]byte, b []byte) {
	cache.Lock()
	defer cache.Unlock()
	if len(cache.mem) >= memEntries {
		cache.mem = map[[32]byte][]byte{}
	}
	cache.mem[key] = b
}
