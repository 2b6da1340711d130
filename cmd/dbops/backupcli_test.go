package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
)

// TestBackupCLI takes, lists and restores backups with the dbops binary
// (the version matrix runs it on PostgreSQL 18 + Redis 8 too): backup run
// for both jobs (Postgres with verify: restore), then backup list and
// restore without the stack's URL variables set, since they only read the
// backup folder (restore writes to --to-url).
func TestBackupCLI(t *testing.T) {
	ctx := context.Background()
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	if _, err := testsrv.OpenDB(t, pgURL).Exec(`CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 500) g`); err != nil {
		t.Fatal(err)
	}
	rc := r.Client(t)
	for i := range 20 {
		if err := rc.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Redis 7.4+ writes hashes with field TTLs as their own RDB types.
	rc.HSet(ctx, "session", "token", "x", "user", "amanat")
	if err := rc.Do(ctx, "HEXPIRE", "session", 3600, "FIELDS", 1, "token").Err(); err != nil && !strings.Contains(err.Error(), "unknown command") {
		t.Fatal(err)
	}
	keys, err := rc.DBSize(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}

	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	dest := t.TempDir()
	f.Write(t, "stack.yaml", clitest.BackupStack(dest, ""))
	f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
	for _, job := range []string{"shop/pg", "shop/cache"} {
		if res := f.Run(t, "backup", "run", job, "-f", "stack.yaml"); res.Code != 0 || !strings.Contains(res.Stdout, "verification:") ||
			job == "shop/cache" && !strings.Contains(res.Stdout, fmt.Sprintf("%d keys read up to the EOF opcode", keys)) {
			t.Fatalf("backup run %s: exit %d\n%s%s", job, res.Code, res.Stdout, res.Stderr)
		}
	}

	f.Env = map[string]string{} // PG_URL and REDIS_URL unset from here on
	for _, tc := range []struct {
		name string
		args []string
		want []string // in stdout
	}{
		{"list", []string{"backup", "list", "-f", "stack.yaml"}, []string{"shop/pg", "shop/cache"}},
		{"restore postgres", []string{"restore", "shop/pg", "--to-url", testsrv.PostgresDB(t), "-f", "stack.yaml"}, []string{"restored", "1 tables, 500 rows"}},
		{"restore redis", []string{"restore", "shop/cache", "-f", "stack.yaml"}, []string{fmt.Sprintf("%d keys read up to the EOF opcode", keys), "--appendonly no", "CONFIG REWRITE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := f.Run(t, tc.args...)
			if res.Code != 0 {
				t.Fatalf("dbops %s: exit %d\n%s%s", strings.Join(tc.args, " "), res.Code, res.Stdout, res.Stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.Stdout, w) {
					t.Errorf("dbops %s: output lacks %q:\n%s", strings.Join(tc.args, " "), w, res.Stdout)
				}
			}
		})
	}

	// dbops restores the RDB itself into a server with AOF on, given its
	// data directory and start command (it stops it with SHUTDOWN NOSAVE).
	t.Run("restore redis itself", func(t *testing.T) {
		dst := testsrv.NewRedis(t, testsrv.RedisOptions{ConfigFile: true, Args: []string{"--appendonly", "yes"}})
		bin, err := testsrv.FindRedisServer()
		if err != nil {
			t.Fatal(err)
		}
		dc := dst.Client(t)
		t.Cleanup(func() { dc.ShutdownNoSave(context.Background()) }) // the daemon dbops started
		dc.Set(ctx, "stale", 1, 0)
		start := fmt.Sprintf("%s %s --daemonize yes --pidfile %s", bin, dst.ConfFile, filepath.Join(dst.Dir, "redis.pid"))
		res := f.Run(t, "restore", "shop/cache", "-f", "stack.yaml", "--to-url", dst.URL(), "--redis-dir", dst.Dir, "--redis-start", start)
		if res.Code != 0 || !strings.Contains(res.Stdout, fmt.Sprintf("%d keys loaded; the file holds %d", keys, keys)) {
			t.Fatalf("exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
		}
		if n, _ := dc.DBSize(ctx).Result(); n != keys {
			t.Errorf("restored server has %d keys, want %d", n, keys)
		}
		if got := testsrv.ConfigGet(t, dc, "appendonly"); got != "yes" {
			t.Errorf("appendonly %s after the restore", got)
		}
	})

	res := f.Run(t, "backup", "list", "-f", "stack.yaml", "--format", "json")
	var rows []struct {
		Job     string `json:"job"`
		Backups []struct {
			Counted  bool `json:"counted"`
			Manifest struct {
				Verification struct {
					OK     bool   `json:"ok"`
					Detail string `json:"detail"`
				} `json:"verification"`
			} `json:"manifest"`
		} `json:"backups"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &rows); err != nil || len(rows) != 2 {
		t.Fatalf("backup list --format json: %v\n%s%s", err, res.Stdout, res.Stderr)
	}
	for _, row := range rows {
		if len(row.Backups) != 1 || !row.Backups[0].Counted || !row.Backups[0].Manifest.Verification.OK {
			t.Errorf("job %s: %+v, want one counted, verified backup", row.Job, row.Backups)
		}
	}
	if matches, _ := filepath.Glob(filepath.Join(dest, "redis", "*.rdb")); len(matches) != 1 {
		t.Errorf("redis backups: %v", matches)
	}
}
