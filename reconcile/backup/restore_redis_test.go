package backup

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/amanat/dbops/internal/testsrv"
)

// TestRedisRestoreProcedure follows RedisRestoreProcedure step by step on
// a real server (the version matrix runs it on Redis 7.0 and 8.0), with
// AOF on and off, and compares the key count of the backup with the
// restored server's, also after a later plain restart. The "old steps"
// case is the procedure dbops printed before: with AOF on, Redis comes up
// empty.
func TestRedisRestoreProcedure(t *testing.T) {
	_, backupFile, want := everyTypeBackup(t)
	for _, step := range []string{"SHUTDOWN NOSAVE", "--appendonly no", "CONFIG SET appendonly yes", "CONFIG REWRITE", "appenddirname"} {
		if !strings.Contains(RedisRestoreProcedure, step) {
			t.Errorf("the printed procedure lacks %q", step)
		}
	}

	for _, tc := range []struct {
		name     string
		aof      bool
		oldSteps bool // start with the config's appendonly, as the old text said
		want     int64
	}{
		{"AOF off", false, false, want},
		{"AOF on", true, false, want},
		{"old steps, AOF on", true, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			aof := map[bool]string{true: "yes", false: "no"}[tc.aof]
			dst := testsrv.NewRedis(t, testsrv.RedisOptions{ConfigFile: true, Args: []string{"--appendonly", aof}})
			c := dst.Client(t)
			if err := c.Set(ctx, "stale", "before the restore", 0).Err(); err != nil {
				t.Fatal(err)
			}
			// 1. the settings
			dir, dbfile := testsrv.ConfigGet(t, c, "dir"), testsrv.ConfigGet(t, c, "dbfilename")
			appendonly, aofDir := testsrv.ConfigGet(t, c, "appendonly"), testsrv.ConfigGet(t, c, "appenddirname")
			// 2. stop without saving
			opt := *c.Options()
			opt.MaxRetries = -1 // the reply is the connection closing: do not retry
			sc := goredis.NewClient(&opt)
			sc.ShutdownNoSave(ctx)
			sc.Close()
			if err := dst.WaitExit(30 * time.Second); err != nil {
				t.Fatal(err)
			}
			// 3. the file in place, the AOF folder aside
			copyFile(t, backupFile, filepath.Join(dir, dbfile))
			if appendonly == "yes" {
				if err := os.Rename(filepath.Join(dir, aofDir), filepath.Join(dir, aofDir+".before-restore")); err != nil {
					t.Fatal(err)
				}
			}
			// 4. start with AOF off
			var extra []string
			if !tc.oldSteps {
				extra = []string{"--appendonly", "no"}
			}
			if err := dst.Start(ctx, extra...); err != nil {
				t.Fatal(err)
			}
			c = dst.Client(t)
			// 5. the keys
			if got := totalKeys(t, c); got != tc.want {
				t.Fatalf("restored server has %d keys, want %d", got, tc.want)
			}
			if tc.oldSteps {
				return
			}
			if n, _ := c.Exists(ctx, "stale").Result(); n != 0 {
				t.Error("a key of the replaced dataset survived")
			}
			// 6. AOF back on, from memory, and kept in the config file
			if appendonly == "yes" {
				if err := c.ConfigSet(ctx, "appendonly", "yes").Err(); err != nil {
					t.Fatal(err)
				}
				waitAOFRewrite(t, c)
				if err := c.ConfigRewrite(ctx).Err(); err != nil {
					t.Fatal(err)
				}
			}
			// A later plain restart (config file only) keeps every key.
			if err := dst.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			c = dst.Client(t)
			if got := totalKeys(t, c); got != tc.want {
				t.Errorf("after a restart the server has %d keys, want %d", got, tc.want)
			}
			if got := testsrv.ConfigGet(t, c, "appendonly"); got != appendonly {
				t.Errorf("after a restart appendonly is %s, want %s", got, appendonly)
			}
		})
	}
}

// everyTypeBackup takes a backup of a server holding every value type and
// returns its manifest, file and key count.
func everyTypeBackup(t *testing.T) (Manifest, string, int64) {
	t.Helper()
	src := testsrv.NewRedis(t, testsrv.RedisOptions{})
	fillEveryType(t, src.Client(t), true)
	keys := totalKeys(t, src.Client(t))
	job := redisJob(t, src.URL())
	m, err := Run(testCtx(t), job, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m, filepath.Join(job.Destination, m.File), keys
}

// TestRestoreRedis: RestoreRedis performs the procedure itself, with AOF
// on and off, given the data directory and how to start the server
// (stopped with SHUTDOWN NOSAVE); and refuses what it cannot do safely.
func TestRestoreRedis(t *testing.T) {
	m, backupFile, want := everyTypeBackup(t)
	for _, tc := range []struct {
		name       string
		aof        bool
		configFile bool
		wrongDir   bool
		wantErr    string
	}{
		{"AOF off", false, true, false, ""},
		{"AOF off, no config file", false, false, false, ""},
		{"AOF on", true, true, false, ""},
		{"AOF on, no config file", true, false, false, "no config file"},
		{"another data directory", false, true, true, "CONFIG GET dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			aof := map[bool]string{true: "yes", false: "no"}[tc.aof]
			dst := testsrv.NewRedis(t, testsrv.RedisOptions{ConfigFile: tc.configFile, Args: []string{"--appendonly", aof}})
			c := dst.Client(t)
			if err := c.Set(ctx, "stale", "before the restore", 0).Err(); err != nil {
				t.Fatal(err)
			}
			to := RedisRestoreTarget{URL: dst.URL(), Dir: dst.Dir, Start: func(ctx context.Context) error {
				if err := dst.WaitExit(30 * time.Second); err != nil {
					return err
				}
				return dst.Start(ctx)
			}}
			if tc.wrongDir {
				to.Dir = t.TempDir()
			}
			rep, err := RestoreRedis(ctx, m, backupFile, to, Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("RestoreRedis = %v, want an error containing %q", err, tc.wantErr)
				}
				if n, _ := c.Exists(ctx, "stale").Result(); n != 1 || testsrv.ConfigGet(t, c, "appendonly") != aof {
					t.Error("a refused restore changed the server")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Log(rep.String())
			c = dst.Client(t)
			if rep.Keys != want || rep.KeysInFile != want || totalKeys(t, c) != want || rep.AOF != tc.aof {
				t.Fatalf("report %+v, server has %d keys; want %d", rep, totalKeys(t, c), want)
			}
			if n, _ := c.Exists(ctx, "stale").Result(); n != 0 {
				t.Error("a key of the replaced dataset survived")
			}
			if !tc.configFile {
				return // a restart would lose the test's command-line settings
			}
			if err := dst.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			c = dst.Client(t)
			if got := totalKeys(t, c); got != want {
				t.Errorf("after a restart the server has %d keys, want %d", got, want)
			}
			if got := testsrv.ConfigGet(t, c, "appendonly"); got != aof {
				t.Errorf("after a restart appendonly is %s, want %s", got, aof)
			}
		})
	}
}

// waitAOFRewrite waits until the AOF rewrite CONFIG SET appendonly yes
// started has finished, and checks it succeeded.
func waitAOFRewrite(t *testing.T, c *goredis.Client) {
	t.Helper()
	ctx := testCtx(t)
	for {
		info, err := c.Info(ctx, "persistence").Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(info, "aof_rewrite_in_progress:0") && strings.Contains(info, "aof_rewrite_scheduled:0") &&
			strings.Contains(info, "aof_enabled:1") {
			if !strings.Contains(info, "aof_last_bgrewrite_status:ok") {
				t.Fatalf("AOF rewrite failed:\n%s", info)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("AOF rewrite did not finish:\n%s", info)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
