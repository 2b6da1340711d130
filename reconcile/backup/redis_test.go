package backup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/amanat/dbops/internal/testsrv"
)

func redisClient(t *testing.T, rawURL string, db int) *goredis.Client {
	t.Helper()
	opt, err := goredis.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	opt.DB = db
	c := goredis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// fillRedis writes keys of every common type and encoding; it returns the
// number of keys in db 0 and db 1.
func fillRedis(t *testing.T, rawURL string) (int64, int64) {
	ctx := testCtx(t)
	c := redisClient(t, rawURL, 0)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Set(ctx, "greeting", "hello", 0).Err())
	must(c.Set(ctx, "counter", 12345, 0).Err())
	must(c.Set(ctx, "big:compressible", strings.Repeat("amanat ", 20000), 0).Err()) // LZF
	must(c.Set(ctx, "bin\x00key", "\x00\xff\x01", 0).Err())
	must(c.Set(ctx, "session:1", "expires", time.Hour).Err())
	must(c.RPush(ctx, "list:small", "a", "b", "c").Err())
	for i := range 2000 {
		must(c.RPush(ctx, "list:big", fmt.Sprintf("item-%d-%s", i, strings.Repeat("x", i%50))).Err())
		must(c.SAdd(ctx, "set:big", fmt.Sprintf("member-%d", i)).Err())
		must(c.HSet(ctx, "hash:big", fmt.Sprintf("field-%d", i), i).Err())
		must(c.ZAdd(ctx, "zset:big", goredis.Z{Score: float64(i) / 3, Member: fmt.Sprintf("m%d", i)}).Err())
	}
	must(c.SAdd(ctx, "set:ints", 1, 2, 3, 99999).Err())
	must(c.SAdd(ctx, "set:small", "x", "y").Err())
	must(c.HSet(ctx, "hash:small", "name", "Amanat", "city", "Tashkent").Err())
	must(c.ZAdd(ctx, "zset:small", goredis.Z{Score: 1.5, Member: "a"}, goredis.Z{Score: -2, Member: "b"}).Err())
	for i := range 50 {
		must(c.XAdd(ctx, &goredis.XAddArgs{Stream: "orders:stream", Values: map[string]any{"order": i, "sku": "A-1"}}).Err())
	}
	must(c.XGroupCreate(ctx, "orders:stream", "billing", "0").Err())
	must(c.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: "billing", Consumer: "worker-1", Streams: []string{"orders:stream", ">"}, Count: 10}).Err())
	c1 := redisClient(t, rawURL, 1)
	must(c1.Set(ctx, "db1:key", "other database", 0).Err())
	must(c1.PExpire(ctx, "db1:key", 10*time.Hour).Err())
	n0, _ := c.DBSize(ctx).Result()
	n1, _ := c1.DBSize(ctx).Result()
	return n0, n1
}

func redisJob(t *testing.T, url string) Job {
	t.Helper()
	return Job{Stack: "shop", Name: "redis", Source: SourceRedis, Schedule: mustSchedule(t, "@daily", ""), Destination: t.TempDir(),
		Retention: Retention{KeepLast: 7}, RedisURL: url}
}

func TestRedisBackupVerifyAndLoad(t *testing.T) {
	ctx := testCtx(t)
	srv := testsrv.NewRedis(t, testsrv.RedisOptions{Password: "p@ss w0rd:/"})
	n0, n1 := fillRedis(t, srv.URL())
	job := redisJob(t, srv.URL())
	m, err := Run(ctx, job, Options{})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := redisClient(t, srv.URL(), 0).Info(ctx, "server").Result()
	if !strings.Contains(info, "redis_version:"+m.ServerVersion+"\r") || m.RDBChecksum != "yes" || !m.Verification.OK {
		t.Fatalf("manifest %+v", m)
	}
	path := filepath.Join(job.Destination, m.File)
	ri, err := CheckRDB(path)
	if err != nil {
		t.Fatal(err)
	}
	if !ri.Walked || ri.Keys != n0+n1 || ri.Checksum == 0 || ri.Note != "" {
		t.Fatalf("CheckRDB %+v, want every record walked and %d keys", ri, n0+n1)
	}
	if !strings.Contains(m.Verification.Detail, fmt.Sprintf("%d keys", n0+n1)) {
		t.Errorf("verification detail %q", m.Verification.Detail)
	}

	// The documented restore: a stopped server's dump.rdb replaced.
	dst := testsrv.NewRedis(t, testsrv.RedisOptions{})
	copyFile(t, path, filepath.Join(dst.Dir, "dump.rdb"))
	if err := dst.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	c0, c1 := redisClient(t, dst.URL(), 0), redisClient(t, dst.URL(), 1)
	if got, _ := c0.DBSize(ctx).Result(); got != n0 {
		t.Errorf("loaded db0 has %d keys, want %d", got, n0)
	}
	if got, _ := c1.Get(ctx, "db1:key").Result(); got != "other database" {
		t.Errorf("db1:key = %q", got)
	}
	if got, _ := c0.Get(ctx, "big:compressible").Result(); got != strings.Repeat("amanat ", 20000) {
		t.Error("big string differs")
	}
	if n, _ := c0.XPending(ctx, "orders:stream", "billing").Result(); n == nil || n.Count != 10 {
		t.Errorf("stream pending entries: %+v", n)
	}
	if ttl, _ := c0.TTL(ctx, "session:1").Result(); ttl <= 0 {
		t.Errorf("ttl lost: %v", ttl)
	}

	// Damage is caught: a flipped byte, a truncated file, a broken EOF opcode.
	dir := t.TempDir()
	damaged := map[string]func(string){
		"flipped":   func(p string) { flipByte(t, p, fileSize(t, p)/2) },
		"truncated": func(p string) { os.Truncate(p, fileSize(t, p)-100) },
		"eof":       func(p string) { flipByte(t, p, -9) },
	}
	for name, damage := range damaged {
		p := filepath.Join(dir, name+".rdb")
		copyFile(t, path, p)
		damage(p)
		if _, err := CheckRDB(p); err == nil {
			t.Errorf("%s RDB accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	bad := m
	copyFile(t, path, filepath.Join(dir, m.File))
	flipByte(t, filepath.Join(dir, m.File), 1000)
	if v := Verify(ctx, bad, dir, job, Options{}); v.OK {
		t.Error("Verify accepted a damaged RDB")
	}
}

func TestRedisWithoutChecksum(t *testing.T) {
	ctx := testCtx(t)
	srv := testsrv.NewRedis(t, testsrv.RedisOptions{Args: []string{"--rdbchecksum", "no"}})
	n0, n1 := fillRedis(t, srv.URL())
	job := redisJob(t, srv.URL())
	m, err := Run(ctx, job, Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(job.Destination, m.File)
	ri, err := CheckRDB(path)
	if err != nil || ri.Checksum != 0 || !ri.Walked || ri.Keys != n0+n1 || m.RDBChecksum != "no" {
		t.Fatalf("rdbchecksum no: %v %+v %q", err, ri, m.RDBChecksum)
	}
	// The same zero checksum from a server that says rdbchecksum yes is damage.
	m.RDBChecksum = "yes"
	if v := Verify(ctx, m, job.Destination, job, Options{}); v.OK || !strings.Contains(v.Error, "rdbchecksum yes") {
		t.Fatalf("zero checksum with rdbchecksum yes: %+v", v)
	}
}

func TestRedisErrors(t *testing.T) {
	ctx := testCtx(t)
	srv := testsrv.NewRedis(t, testsrv.RedisOptions{Password: "right-one"})
	job := redisJob(t, strings.Replace(srv.URL(), "right-one", "Wrong-Secret", 1))
	_, err := Run(ctx, job, Options{})
	if err == nil || strings.Contains(err.Error(), "Wrong-Secret") {
		t.Fatalf("wrong password: %v", err)
	}
	t.Log(err)
	// SYNC refused by the server (renamed away): the error carries its answer.
	srv2 := testsrv.NewRedis(t, testsrv.RedisOptions{ConfigFile: true, Args: []string{"--rename-command", "SYNC", ""}})
	job = redisJob(t, srv2.URL())
	if _, err = Run(ctx, job, Options{}); err == nil || !strings.Contains(err.Error(), "SYNC") {
		t.Fatalf("SYNC disabled: %v", err)
	}
	t.Log(err)
	if bs, _ := List(job.Destination, job); len(bs) != 0 || len(tempFiles(job.Destination, job)) != 0 {
		t.Fatal("a failed run left files")
	}
	var cancelCtx, cancel = context.WithCancel(ctx)
	cancel()
	if _, err := Run(cancelCtx, redisJob(t, srv.URL()), Options{}); err == nil {
		t.Fatal("cancelled run succeeded")
	}
}
