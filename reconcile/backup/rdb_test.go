package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/amanat/dbops/internal/testsrv"
)

// redisVersion returns the server's major and minor version.
func redisVersion(t *testing.T, c *goredis.Client) (int, int) {
	t.Helper()
	info, err := c.Info(context.Background(), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			parts := strings.Split(v, ".")
			major, _ := strconv.Atoi(parts[0])
			minor := 0
			if len(parts) > 1 {
				minor, _ = strconv.Atoi(parts[1])
			}
			return major, minor
		}
	}
	t.Fatalf("no redis_version in INFO server")
	return 0, 0
}

func atLeast(major, minor, wantMajor, wantMinor int) bool {
	return major > wantMajor || major == wantMajor && minor >= wantMinor
}

// totalKeys sums the keys of every database (INFO keyspace), like DBSIZE
// summed over databases.
func totalKeys(t *testing.T, c *goredis.Client) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "keyspace").Result()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, line := range strings.Split(info, "\n") {
		_, rest, ok := strings.Cut(strings.TrimSpace(line), ":keys=")
		if !ok {
			continue
		}
		k, _, _ := strings.Cut(rest, ",")
		v, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			t.Fatalf("INFO keyspace line %q", line)
		}
		n += v
	}
	return n
}

// fillEveryType writes a key of every value type and encoding the server
// can write to an RDB (modules excluded) and returns the RDB value types
// and opcodes the file must then hold. Field TTLs (HEXPIRE) need 7.4.
func fillEveryType(t *testing.T, c *goredis.Client, multiDB bool) map[byte]string {
	t.Helper()
	ctx := testCtx(t)
	major, minor := redisVersion(t, c)
	want := map[byte]string{
		0: "string", 18: "list (quicklist 2)", 11: "set (intset)", 2: "set (hash table)",
		17: "zset (listpack)", 5: "zset (skiplist)", 16: "hash (listpack)", 4: "hash (hash table)",
		19: "stream (listpacks 2)", 245: "function library", 252: "expire time (ms)",
	}
	p := c.Pipeline()
	p.Set(ctx, "string:raw", "hello", 0)
	p.Set(ctx, "string:int", 12345, 0)
	p.Set(ctx, "string:lzf", strings.Repeat("amanat ", 20000), 0)
	p.Set(ctx, "string:binary\x00key", "\x00\xff\x01", 0)
	p.Set(ctx, "string:ttl", "expires", time.Hour)
	p.RPush(ctx, "list:small", "a", "b", 3)
	p.SAdd(ctx, "set:intset", 1, 2, 3, 99999)
	p.SAdd(ctx, "set:small", "x", "y")
	p.HSet(ctx, "hash:small", "name", "Amanat", "city", "Tashkent")
	p.ZAdd(ctx, "zset:small", goredis.Z{Score: 1.5, Member: "a"}, goredis.Z{Score: -2, Member: "b"})
	for i := range 1000 {
		p.RPush(ctx, "list:big", fmt.Sprintf("item-%d-%s", i, strings.Repeat("x", i%50)))
		p.SAdd(ctx, "set:big", fmt.Sprintf("member-%d", i))
		p.HSet(ctx, "hash:big", fmt.Sprintf("field-%d", i), i)
		p.ZAdd(ctx, "zset:big", goredis.Z{Score: float64(i) / 3, Member: fmt.Sprintf("m%d", i)})
	}
	for i := range 50 {
		p.XAdd(ctx, &goredis.XAddArgs{Stream: "stream:orders", Values: map[string]any{"order": i, "sku": "A-1"}})
	}
	p.XGroupCreate(ctx, "stream:orders", "billing", "0")
	p.XGroupCreate(ctx, "stream:orders", "audit", "$")
	p.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: "billing", Consumer: "worker-1", Streams: []string{"stream:orders", ">"}, Count: 10})
	p.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: "billing", Consumer: "worker-2", Streams: []string{"stream:orders", ">"}, Count: 5})
	p.Do(ctx, "FUNCTION", "LOAD", "#!lua name=dbopslib\nredis.register_function('dbops_echo', function(keys, args) return args[1] end)")
	if atLeast(major, minor, 7, 2) {
		want[20] = "set (listpack)"
		delete(want, 19)
		want[21] = "stream (listpacks 3)"
	}
	if atLeast(major, minor, 7, 4) {
		// A small hash with field TTLs stays a listpack (type 25); a big
		// one is a hash table with TTL metadata (type 24).
		p.HSet(ctx, "hash:small:ttl", "a", 1, "b", 2, "c", 3)
		p.Do(ctx, "HEXPIRE", "hash:small:ttl", 3600, "FIELDS", 2, "a", "b")
		args := []any{"HEXPIRE", "hash:big:ttl", 7200, "FIELDS", 300}
		for i := range 1000 { // above hash-max-listpack-entries (128 on 7.x, 512 on 8.x)
			p.HSet(ctx, "hash:big:ttl", fmt.Sprintf("f%d", i), i)
			if i < 300 {
				args = append(args, fmt.Sprintf("f%d", i))
			}
		}
		p.Do(ctx, args...)
		want[25] = "hash with field TTLs (listpack ex)"
		want[24] = "hash with field TTLs (metadata)"
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatalf("fill: %v", err)
	}
	if multiDB {
		opt := *c.Options()
		opt.DB = 1
		c1 := goredis.NewClient(&opt)
		defer c1.Close()
		if err := c1.Set(ctx, "db1:key", "other database", 10*time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
	return want
}

// TestRDBEveryValueType writes real RDB files with the redis-server under
// test (the version matrix runs it on 7.0 and 8.0) holding every value
// type that version writes, with rdbchecksum on and off, LRU and LFU
// records and cluster slot info, and checks that the walk reads every
// record up to the EOF opcode and counts exactly the server's keys, both
// for the file fetched over SYNC by a backup and for the server's own
// dump.rdb written by SAVE.
func TestRDBEveryValueType(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		cluster bool
		extra   map[byte]string // records this configuration adds
	}{
		{"checksum yes, LRU", []string{"--rdbchecksum", "yes", "--maxmemory-policy", "allkeys-lru"}, false, map[byte]string{248: "LRU idle time"}},
		{"checksum no, LFU", []string{"--rdbchecksum", "no", "--maxmemory-policy", "allkeys-lfu"}, false, map[byte]string{249: "LFU frequency"}},
		{"cluster mode", []string{"--cluster-enabled", "yes"}, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			srv := testsrv.NewRedis(t, testsrv.RedisOptions{Args: tc.args})
			c := srv.Client(t)
			major, minor := redisVersion(t, c)
			if tc.cluster {
				if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
					t.Fatal(err)
				}
				waitClusterOK(t, c)
				if atLeast(major, minor, 7, 4) {
					tc.extra = map[byte]string{244: "slot info"}
				}
			}
			want := fillEveryType(t, c, !tc.cluster)
			for k, v := range tc.extra {
				want[k] = v
			}
			keys := totalKeys(t, c)
			noChecksum := testsrv.ConfigGet(t, c, "rdbchecksum") == "no"

			job := redisJob(t, srv.URL())
			m, err := Run(ctx, job, Options{})
			if err != nil {
				t.Fatalf("backup: %v", err)
			}
			if !m.Verification.OK || !strings.Contains(m.Verification.Detail, fmt.Sprintf("%d keys read up to the EOF opcode", keys)) {
				t.Errorf("verification %+v, want OK with %d keys read", m.Verification, keys)
			}
			if noChecksum && (strings.Contains(m.Verification.Detail, "CRC") || !strings.Contains(m.Verification.Detail, "no checksum")) {
				t.Errorf("rdbchecksum no, yet the detail says %q", m.Verification.Detail)
			}

			if err := c.Save(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			for name, path := range map[string]string{"backup (SYNC)": filepath.Join(job.Destination, m.File), "dump.rdb (SAVE)": filepath.Join(srv.Dir, "dump.rdb")} {
				info, err := CheckRDB(path)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !info.Walked || info.Keys != keys || (info.Checksum == 0) != noChecksum {
					t.Errorf("%s: %+v, want every record walked, %d keys, checksum present: %v", name, info, keys, !noChecksum)
				}
				for typ, what := range want {
					if info.seen[typ] == 0 {
						t.Errorf("%s: no record of type %d (%s) in the file: the test does not cover it", name, typ, what)
					}
				}
			}
		})
	}
}

func waitClusterOK(t *testing.T, c *goredis.Client) {
	t.Helper()
	ctx := testCtx(t)
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(info, "cluster_state:ok") {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("cluster state never ok: %s", info)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestRDBFieldTTLFixtures walks RDB files written by Redis 8.0.6 (see
// testdata/README.md), so the hash-field-TTL types are checked even where
// the machine's Redis is too old to write them; and a record type this
// dbops does not know makes the file NOT verified, whatever its checksum.
func TestRDBFieldTTLFixtures(t *testing.T) {
	withType := func(typ byte) func(t *testing.T, p string) {
		return func(t *testing.T, p string) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			i := bytes.Index(b, append([]byte{25, 5}, "small"...))
			if i < 0 {
				t.Fatal("fixture has no type-25 key \"small\"")
			}
			b[i] = typ
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name     string
		file     string
		edit     func(t *testing.T, p string)
		checksum bool
		wantErr  string // "" : every record read
	}{
		{"checksum yes", "redis-8.0.6-field-ttl.rdb", nil, true, ""},
		{"checksum no", "redis-8.0.6-field-ttl-nochecksum.rdb", nil, false, ""},
		{"unknown type, no checksum", "redis-8.0.6-field-ttl-nochecksum.rdb", withType(26), false, "NOT verified: walk stopped at byte 5303: record type 26"},
		{"pre-GA function opcode, no checksum", "redis-8.0.6-field-ttl-nochecksum.rdb", withType(246), false, "NOT verified: walk stopped at byte 5303: a Redis 7.0 release-candidate function record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), tc.file)
			copyFile(t, filepath.Join("testdata", tc.file), p)
			if tc.edit != nil {
				tc.edit(t, p)
			}
			info, err := CheckRDB(p)
			if tc.wantErr != "" {
				var inc *IncompleteError
				if !errors.As(err, &inc) || !strings.Contains(err.Error(), tc.wantErr) || info.Walked {
					t.Fatalf("CheckRDB = %+v, %v; want an *IncompleteError %q", info, err, tc.wantErr)
				}
				if strings.Contains(info.Summary(), "CRC") || !strings.Contains(info.Summary(), "before the walk stopped") {
					t.Errorf("summary %q", info.Summary())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !info.Walked || info.Keys != 4 || (info.Checksum != 0) != tc.checksum || info.seen[24] != 1 || info.seen[25] != 1 {
				t.Fatalf("CheckRDB = %+v (records %v), want 4 keys walked, one of type 24 and 25", info, info.seen)
			}
		})
	}
}

// TestIncompleteWalkIsNotVerified: Verify fails a backup whose walk
// stops early, saying so, and List does not count one that an older dbops
// recorded as verified although its walk had stopped.
func TestIncompleteWalkIsNotVerified(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	job := Job{Stack: "shop", Name: "cache", Source: SourceRedis, Destination: dir}
	data := filepath.Join(dir, "shop-cache-20260101T000000Z.rdb")
	copyFile(t, filepath.Join("testdata", "redis-8.0.6-field-ttl-nochecksum.rdb"), data)
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	b[bytes.Index(b, append([]byte{25, 5}, "small"...))] = 26 // a type this dbops does not know
	if err := os.WriteFile(data, b, 0o644); err != nil {
		t.Fatal(err)
	}
	size, sum, err := hashFile(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	m := Manifest{Stack: "shop", Job: "cache", Source: SourceRedis, File: filepath.Base(data), Size: size, SHA256: sum,
		StartedAt: time.Now().UTC(), RDBChecksum: "no"}
	v := Verify(ctx, m, dir, job, Options{})
	if v.OK || !strings.HasPrefix(v.Error, "NOT verified: walk stopped") || !strings.Contains(v.Detail, "keys read before the walk stopped") ||
		strings.Contains(v.Detail+v.Error, "checksum still covers") {
		t.Fatalf("Verify = %+v, want NOT verified with the reason", v)
	}

	// What an older dbops recorded for such a file: verified, with a note.
	for _, tc := range []struct {
		name, detail string
		counted      bool
	}{
		{"walked to EOF", "RDB version 12, 4 keys read up to the EOF opcode, no checksum (written with rdbchecksum no): only the record walk checked the file", true},
		{"walk stopped (older dbops)", "RDB version 12, 1311 keys, CRC-64 0000000000000000; walk stopped at byte 5303: value type 25 is not parsed (the checksum still covers it)", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m.Verification = Verification{Method: VerifyRead, OK: true, Detail: tc.detail, At: time.Now().UTC()}
			if err := WriteManifest(dir, m); err != nil {
				t.Fatal(err)
			}
			bs, err := List(dir, job)
			if err != nil || len(bs) != 1 {
				t.Fatalf("List = %+v, %v", bs, err)
			}
			if bs[0].Counted != tc.counted || !tc.counted && !strings.HasPrefix(bs[0].Reason, "NOT verified") {
				t.Errorf("listed %+v, want counted %v", bs[0], tc.counted)
			}
		})
	}
}

// checkRDBStream (one pass, for object storage and decryption) gives the
// verdict checkRDB gives on the file, for good and damaged RDBs.
func TestCheckRDBStreamAgreesWithFile(t *testing.T) {
	dir := t.TempDir()
	for _, fixture := range []string{"redis-8.0.6-field-ttl.rdb", "redis-8.0.6-field-ttl-nochecksum.rdb"} {
		src := filepath.Join("testdata", fixture)
		for _, c := range []struct {
			name   string
			damage func(p string)
		}{
			{"intact", func(string) {}},
			{"flipped", func(p string) { flipByte(t, p, fileSize(t, p)/2) }},
			{"truncated", func(p string) { os.Truncate(p, fileSize(t, p)-100) }},
			{"eof opcode", func(p string) { flipByte(t, p, -9) }},
			{"checksum", func(p string) { flipByte(t, p, -1) }},
			{"magic", func(p string) { flipByte(t, p, 0) }},
		} {
			p := filepath.Join(dir, c.name+"-"+fixture)
			copyFile(t, src, p)
			c.damage(p)
			for _, rejectZero := range []bool{false, true} {
				want, wantErr := checkRDB(p, rejectZero)
				f, err := os.Open(p)
				if err != nil {
					t.Fatal(err)
				}
				got, gotErr := checkRDBStream(f, rejectZero)
				f.Close()
				// On damage the file check stops before walking; only the verdict compares.
				if (gotErr == nil) != (wantErr == nil) || (wantErr == nil && (got.Keys != want.Keys || !got.Walked || got.Checksum != want.Checksum)) {
					t.Errorf("%s %s rejectZero=%v: stream %+v %v, file %+v %v", fixture, c.name, rejectZero, got, gotErr, want, wantErr)
				}
			}
		}
	}
}
