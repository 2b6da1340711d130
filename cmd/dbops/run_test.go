package main_test

// Process-level tests of `dbops run`: the real binary (built once by clitest.Dbops(t))
// against throwaway PostgreSQL and Redis servers, observed from outside
// through pg_stat_activity, pg_locks, goose's version table, CONFIG GET and
// the process's own HTTP endpoints. Waits are bounded; nothing asserts speed.

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile/loop"
	"github.com/amanat/dbops/reconcile/shard"
)

// dbopsLockClass is lock.Class ("dbop") as pg_locks shows it in classid.
const dbopsLockClass = 1684172656

// gooseLockID is goose's one-key advisory lock (classid 0, objid the id).
const gooseLockID = 4097083626

// slowMigration creates a table, then sleeps inside its transaction: if it is
// rolled back, the table is gone.
var slowMigration = clitest.Mig("CREATE TABLE slow_t (id int);\nSELECT pg_sleep(3);", "DROP TABLE slow_t;")

// TestRunSingleWriterTwoProcesses runs two `dbops run` processes on one
// stack, as two replicas would, and proves that only one of them applies.
// Both start together and bring the stack in sync; then a new revision adds a
// slow migration, a quick one after it and a Redis change, which both
// processes see at once. While one is inside the slow migration the other
// reports LockHeldElsewhere and is never Applying, exactly one session holds
// the stack's advisory lock; afterwards each migration is recorded once, the
// changes applied by both add up to exactly the number of changes, and no
// lock is held once in sync. The second case is a mis-configured sharded
// pair: both replicas were given the shard that owns the stack.
func TestRunSingleWriterTwoProcesses(t *testing.T) {
	owner := fmt.Sprint(shard.Of("ledger", 2))
	singleWriter := func(t *testing.T, args []string) {
		pgURL := testsrv.PostgresDB(t)
		rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
		f := clitest.NewFixture(t, map[string]string{"00001_init.sql": clitest.Mig("CREATE TABLE init_t (id int);", "DROP TABLE init_t;")})
		f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, rd.URL()
		stack := func(maxmemory string) string {
			return clitest.StackYAML("ledger", `  postgres:
    url: ${PG_URL}
    migrations: {dir: ./migrations}
  redis:
    url: ${REDIS_URL}
    config:
      maxmemory: `+maxmemory+"\n")
		}
		f.Write(t, "stack.yaml", stack("32mb"))
		db := clitest.Monitor(t, pgURL)

		addrs := freeAddrs(t, 2)
		procs := []*runProcess{
			startRun(t, f, addrs[0], append([]string{"--interval", "500ms"}, args...)...),
			startRun(t, f, addrs[1], append([]string{"--interval", "500ms"}, args...)...),
		}
		inSync := func() {
			t.Helper()
			for _, p := range procs {
				eventually(t, "both processes report the stack in sync", func() bool {
					if p.exited() {
						t.Fatalf("dbops run exited early (code %d):\n%s", p.code, p.output())
					}
					s := stackStatus(t, p, "ledger")
					return len(s.Conditions) > 0 && s.Conditions[0].Reason == loop.ReasonSucceeded &&
						resourceState(s, "postgres") == loop.StateInSync && resourceState(s, "redis") == loop.StateInSync
				})
			}
		}
		inSync()
		if got := versionCounts(t, db); fmt.Sprint(got) != "map[1:1]" {
			t.Fatalf("after the first revision goose_db_version rows per version = %v, want map[1:1]", got)
		}

		// The new revision: migrations first, then the stack file by rename.
		f.Write(t, "migrations/00002_slow.sql", slowMigration)
		f.Write(t, "migrations/00003_quick.sql", clitest.Mig("CREATE TABLE quick_t (id int);", "DROP TABLE quick_t;"))
		f.Write(t, ".stack.yaml.tmp", stack("48mb"))
		if err := os.Rename(f.Dir+"/.stack.yaml.tmp", f.Dir+"/stack.yaml"); err != nil {
			t.Fatal(err)
		}
		const changes = 2 + 3 // first revision: one migration, maxmemory; second: two migrations, maxmemory

		applier := -1
		sawSleep, sawLockHeld := false, false
		deadline := time.Now().Add(60 * time.Second)
		for {
			if time.Now().After(deadline) {
				t.Fatalf("timed out: slow migration seen=%v, other process reported %s=%v", sawSleep, loop.ReasonLocked, sawLockHeld)
			}
			for _, p := range procs {
				if p.exited() {
					t.Fatalf("dbops run exited early (code %d):\n%s", p.code, p.output())
				}
			}
			sleeping := sleepingMigrations(t, db)
			if sleeping > 1 {
				t.Fatalf("%d dbops sessions are inside the slow migration at once", sleeping)
			}
			if sleeping == 0 {
				if sawSleep {
					break // the slow migration is over
				}
				time.Sleep(20 * time.Millisecond)
				continue
			}
			sawSleep = true
			locks, holders := stackLocks(t, db, "ledger")
			sts := []loop.StackStatus{stackStatus(t, procs[0], "ledger"), stackStatus(t, procs[1], "ledger")}
			var applying []int
			for i, s := range sts {
				if resourceState(s, "postgres") == loop.StateApplying {
					applying = append(applying, i)
				}
			}
			if len(applying) > 1 {
				t.Fatalf("both processes are applying at once:\n%+v\n%+v", sts[0], sts[1])
			}
			// The samples above are only conclusive if the slow migration was
			// running before (checked) and after them.
			if sleepingMigrations(t, db) != 1 {
				break
			}
			if locks != 1 || holders != 1 {
				t.Errorf("during the slow migration pg_locks shows %d dbops lock(s) held by %d session(s), want exactly 1 by 1", locks, holders)
			}
			if len(applying) != 1 {
				t.Fatalf("a dbops session is in the slow migration but no process reports Applying:\n%+v\n%+v", sts[0], sts[1])
			}
			if applier == -1 {
				applier = applying[0]
			} else if applier != applying[0] {
				t.Fatalf("the applying process changed from %d to %d within one migration", applier, applying[0])
			}
			other := sts[1-applier]
			if len(other.Conditions) > 0 && other.Conditions[0].Reason == loop.ReasonLocked {
				sawLockHeld = true
			}
			time.Sleep(50 * time.Millisecond)
		}
		if applier == -1 {
			t.Fatal("never sampled the applying process during the slow migration")
		}
		if !sawLockHeld {
			t.Errorf("while one process applied, the other never reported %s", loop.ReasonLocked)
		}

		inSync()
		if got := versionCounts(t, db); fmt.Sprint(got) != "map[1:1 2:1 3:1]" {
			t.Errorf("goose_db_version rows per version = %v, want each of 1, 2 and 3 exactly once", got)
		}
		for _, table := range []string{"init_t", "slow_t", "quick_t"} {
			if !tableExists(t, db, table) {
				t.Errorf("table %s missing", table)
			}
		}
		if got := testsrv.ConfigGet(t, rd.Client(t), "maxmemory"); got != "50331648" {
			t.Errorf("maxmemory = %s, want 50331648", got)
		}
		var applied [2]float64
		var failed float64
		for i, p := range procs {
			m := p.get(t, "/metrics")
			applied[i] = metricSum(m, "dbops_changes_applied_total")
			failed += metricSum(m, "dbops_changes_failed_total")
		}
		if applied[0]+applied[1] != changes {
			t.Errorf("dbops_changes_applied_total of the two processes: %v, want %d in all", applied, changes)
		}
		if failed != 0 {
			t.Errorf("dbops_changes_failed_total sums to %v, want 0", failed)
		}
		// In sync, nobody holds the stack's lock (or goose's) any more.
		if locks, _ := anyDbopsLocks(t, db); locks != 0 {
			t.Errorf("%d dbops advisory lock(s) still held once in sync", locks)
		}
		if n := gooseLocks(t, db); n != 0 {
			t.Errorf("goose's advisory lock still held once in sync")
		}

		for _, p := range procs {
			if code := p.stop(t); code != 0 {
				t.Errorf("dbops run exited %d after SIGTERM, want 0:\n%s", code, p.output())
			}
		}
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"unsharded", nil},
		{"both claim the stack's shard", []string{"--shards", "2", "--shard-index", owner}},
	} {
		t.Run(tc.name, func(t *testing.T) { singleWriter(t, tc.args) })
	}
}

// TestRunSIGTERMDuringCycle sends SIGTERM while a migration is running and
// checks the process exits 0 leaving the database at a clean version with no
// lock held, as reconcile/postgres/migrate.go promises: the batch under way
// gets --grace to finish, then its statement is cancelled and its
// transaction rolled back; the next migration never starts.
func TestRunSIGTERMDuringCycle(t *testing.T) {
	quick := func(table string) string {
		return clitest.Mig("CREATE TABLE "+table+" (id int);", "DROP TABLE "+table+";")
	}
	noTx := func(table string) string { return "-- +goose NO TRANSACTION\n" + quick(table) }
	cases := []struct {
		name       string
		migrations map[string]string
		args       []string
		versions   string // goose_db_version rows per version afterwards
		present    []string
		absent     []string
	}{{
		name: "grace lets the slow migration finish, the next batch never starts",
		migrations: map[string]string{
			"00001_first.sql": quick("first_t"), "00002_slow.sql": slowMigration, "00003_after.sql": noTx("after_t"),
		},
		versions: "map[1:1 2:1]",
		present:  []string{"first_t", "slow_t"},
		absent:   []string{"after_t"},
	}, {
		name: "past --grace the slow migration is cancelled and rolled back",
		migrations: map[string]string{
			"00001_first.sql": quick("first_t"), "00002_slow.sql": slowMigration, "00003_after.sql": noTx("after_t"),
		},
		args:     []string{"--grace", "1s"},
		versions: "map[1:1]",
		present:  []string{"first_t"},
		absent:   []string{"slow_t", "after_t"},
	}, {
		// migrate.go checks for shutdown between every two migrations, even
		// transactional ones sharing a batch's connections: the one after
		// the slow migration never starts.
		name: "the next transactional migration of the same batch never starts",
		migrations: map[string]string{
			"00001_first.sql": quick("first_t"), "00002_slow.sql": slowMigration, "00003_after.sql": quick("after_t"),
		},
		versions: "map[1:1 2:1]",
		present:  []string{"first_t", "slow_t"},
		absent:   []string{"after_t"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pgURL := testsrv.PostgresDB(t)
			f := clitest.NewFixture(t, tc.migrations)
			f.Env["PG_URL"] = pgURL
			f.Write(t, "stack.yaml", clitest.StackYAML("orders", clitest.PGMigrations))
			db := clitest.Monitor(t, pgURL)
			p := startRun(t, f, freeAddrs(t, 1)[0], tc.args...)

			eventually(t, "the slow migration running", func() bool {
				if p.exited() {
					t.Fatalf("dbops run exited early (code %d):\n%s", p.code, p.output())
				}
				return sleepingMigrations(t, db) == 1
			})
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			code, ok := p.wait(60 * time.Second)
			if !ok {
				t.Fatalf("dbops run still running 60s after SIGTERM:\n%s", p.output())
			}
			if code != 0 {
				t.Errorf("exit code %d after SIGTERM, want 0:\n%s", code, p.output())
			}
			if got := fmt.Sprint(versionCounts(t, db)); got != tc.versions {
				t.Errorf("goose_db_version rows per version = %s, want %s", got, tc.versions)
			}
			for _, table := range tc.present {
				if !tableExists(t, db, table) {
					t.Errorf("table %s missing", table)
				}
			}
			for _, table := range tc.absent {
				if tableExists(t, db, table) {
					t.Errorf("table %s exists: its migration ran (or was not rolled back)", table)
				}
			}
			eventually(t, "no dbops or goose advisory lock held", func() bool {
				n, _ := anyDbopsLocks(t, db)
				return n == 0 && gooseLocks(t, db) == 0
			})
			if out := p.output(); !strings.Contains(out, `msg="shutting down`) || !strings.Contains(out, "msg=stopped") {
				t.Errorf("the log does not say it shut down and stopped:\n%s", out)
			}
		})
	}
}

// TestRunCredentialsAbsent runs the real process with passwords in every URL,
// including a Postgres and a Redis with a wrong password so their errors are
// logged and reported, then a revision rejected for a malformed URL holding a
// password, and looks for the passwords in stdout, stderr, /status, /metrics
// and /readyz, with either log format.
func TestRunCredentialsAbsent(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			pg := testsrv.SharedPostgres(t)
			pgURL := testsrv.PostgresDB(t)
			rd := testsrv.NewRedis(t, testsrv.RedisOptions{Password: "redisRunPw-8d21f0"})
			const wrongPg, wrongRedis = "wrongPgPw-31c9e7", "wrongRedisPw-a17b42"
			f := clitest.NewFixture(t, map[string]string{"00001_t.sql": clitest.Mig("CREATE TABLE t (id int);", "DROP TABLE t;")})
			f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, rd.URL()
			// The bad stacks name another database and another parameter:
			// two stacks managing the same one are refused at load.
			f.Env["BAD_PG_URL"] = strings.Replace(strings.Replace(pgURL, ":"+pg.Password+"@", ":"+wrongPg+"@", 1), "/t_", "/other_t_", 1)
			f.Env["BAD_REDIS_URL"] = strings.Replace(rd.URL(), ":"+rd.Password+"@", ":"+wrongRedis+"@", 1)
			if f.Env["BAD_PG_URL"] == pgURL || f.Env["BAD_REDIS_URL"] == rd.URL() {
				t.Fatal("could not put a wrong password in the URLs")
			}
			f.Write(t, "stacks.yaml", clitest.StackYAML("good", `  postgres:
    url: ${PG_URL}
    migrations: {dir: ./migrations}
  redis:
    url: ${REDIS_URL}
    config: {maxmemory: 32mb}
`)+"---\n"+clitest.StackYAML("badpg", `  postgres:
    url: ${BAD_PG_URL}
    migrations: {dir: ./migrations}
`)+"---\n"+clitest.StackYAML("badredis", `  redis:
    url: ${BAD_REDIS_URL}
    config: {hz: 10}
`))
			p := startRun(t, f, freeAddrs(t, 1)[0], "--interval", "500ms", "--log-format", format)
			p.waitUp(t)
			eventually(t, "good in sync, badpg and badredis failed", func() bool {
				good := stackStatus(t, p, "good")
				return len(good.Conditions) > 0 && good.Conditions[0].Reason == loop.ReasonSucceeded &&
					failedReason(stackStatus(t, p, "badpg")) && failedReason(stackStatus(t, p, "badredis"))
			})
			// A revision with a malformed URL holding a password is rejected,
			// and the rejection is reported in the log and /status.
			const rejectedPw = "rejectedPw-5c0e77"
			f.Write(t, "broken.yaml", clitest.StackYAML("broken", "  redis:\n    url: redis://:"+rejectedPw+"@127.0.0.1:notaport/0\n    config: {maxmemory: 1mb}\n"))
			eventually(t, "the broken revision rejected", func() bool {
				var st loop.Status
				return json.Unmarshal([]byte(p.get(t, "/status")), &st) == nil && st.Rejected != nil &&
					strings.Contains(strings.Join(st.Rejected.Errors, "\n"), "broken.yaml")
			})
			status := p.get(t, "/status")
			metrics := p.get(t, "/metrics")
			ready := p.get(t, "/readyz")
			if code := p.stop(t); code != 0 {
				t.Errorf("exit %d after SIGTERM", code)
			}
			logs := p.output()
			// The failures are reported, so the check below looks at real error text.
			for _, want := range []string{"password authentication failed", "WRONGPASS", "broken.yaml"} {
				if !strings.Contains(status, want) || !strings.Contains(logs, want) {
					t.Errorf("%q is not in both /status and the log:\nstatus: %s\nlog: %s", want, status, logs)
				}
			}
			all := map[string]string{"stdout+stderr": logs, "/status": status, "/metrics": metrics, "/readyz": ready}
			for where, text := range all {
				for _, secret := range []string{pg.Password, rd.Password, wrongPg, wrongRedis, rejectedPw} {
					if strings.Contains(text, secret) {
						t.Errorf("%s shows the password %q", where, secret)
					}
				}
			}
		})
	}
}

// TestRunLogFormat checks the log is text (logfmt) by default and one JSON
// object per line with --log-format json, and that another value is refused.
func TestRunLogFormat(t *testing.T) {
	for _, format := range []string{"", "json"} {
		name := format
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
			f := clitest.NewFixture(t, nil)
			f.Env["REDIS_URL"] = rd.URL()
			f.Write(t, "stack.yaml", clitest.StackYAML("cache-"+name, "  redis:\n    url: ${REDIS_URL}\n    config: {maxmemory-policy: allkeys-lru}\n"))
			var args []string
			if format != "" {
				args = []string{"--log-format", format}
			}
			p := startRun(t, f, freeAddrs(t, 1)[0], args...)
			p.waitUp(t)
			eventually(t, "stack in sync", func() bool {
				s := stackStatus(t, p, "cache-"+name)
				return len(s.Conditions) > 0 && s.Conditions[0].Reason == loop.ReasonSucceeded
			})
			if m := p.get(t, "/metrics"); !regexp.MustCompile(`(?m)^dbops_build_info\{goversion="go[^"]+",revision="[^"]+",version="[^"]+"\} 1$`).MatchString(m) {
				t.Errorf("no dbops_build_info{goversion,revision,version} 1 in /metrics")
			}
			if code := p.stop(t); code != 0 {
				t.Fatalf("exit %d after SIGTERM:\n%s", code, p.output())
			}
			lines := strings.Split(strings.TrimSpace(p.stderr.String()), "\n")
			if len(lines) < 3 {
				t.Fatalf("only %d log line(s):\n%s", len(lines), p.stderr.String())
			}
			var msgs []string
			for _, line := range lines {
				var rec map[string]any
				err := json.Unmarshal([]byte(line), &rec)
				if format == "json" {
					if err != nil {
						t.Fatalf("not a JSON line: %q (%v)", line, err)
					}
					for _, k := range []string{"time", "level", "msg"} {
						if _, ok := rec[k]; !ok {
							t.Errorf("JSON line lacks %q: %s", k, line)
						}
					}
					msgs = append(msgs, fmt.Sprint(rec["msg"]))
					continue
				}
				if err == nil || !strings.HasPrefix(line, "time=") || !strings.Contains(line, " level=") || !strings.Contains(line, " msg=") {
					t.Fatalf("not a text (logfmt) line: %q", line)
				}
				_, m, _ := strings.Cut(line, " msg=")
				msgs = append(msgs, m)
			}
			joined := strings.Join(msgs, "\n")
			// The start line names the build and the effective configuration.
			for _, want := range []string{"dbops starting", "version", "goversion", "interval", "log_level", "dir"} {
				if !strings.Contains(p.stderr.String(), want) {
					t.Errorf("no %q in the log:\n%s", want, p.stderr.String())
				}
			}
			for _, want := range []string{"dbops run started", "applied", "stopped"} {
				if !strings.Contains(joined, want) {
					t.Errorf("no %q message in the log:\n%s", want, p.stderr.String())
				}
			}
		})
	}
	for _, flag := range []string{"--log-format", "--log-level"} {
		t.Run("unknown "+flag, func(t *testing.T) {
			f := clitest.NewFixture(t, nil)
			res := f.Run(t, "run", "--dir", f.Dir, "--listen", freeAddrs(t, 1)[0], "--cache-dir", t.TempDir(), flag, "xml")
			if res.Code != 1 || !strings.Contains(res.Stderr, flag+` "xml"`) {
				t.Errorf("%s xml: %+v", flag, res)
			}
		})
	}
	t.Run("log level warn", func(t *testing.T) {
		rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
		f := clitest.NewFixture(t, nil)
		f.Env["REDIS_URL"] = rd.URL()
		f.Write(t, "stack.yaml", clitest.StackYAML("cache-warn", "  redis:\n    url: ${REDIS_URL}\n    config: {maxmemory-policy: allkeys-lru}\n"))
		p := startRun(t, f, freeAddrs(t, 1)[0], "--log-level", "warn")
		p.waitUp(t)
		eventually(t, "stack in sync", func() bool {
			s := stackStatus(t, p, "cache-warn")
			return len(s.Conditions) > 0 && s.Conditions[0].Reason == loop.ReasonSucceeded
		})
		if code := p.stop(t); code != 0 {
			t.Fatalf("exit %d after SIGTERM:\n%s", code, p.output())
		}
		if strings.Contains(p.stderr.String(), "level=INFO") {
			t.Errorf("--log-level warn wrote INFO lines:\n%s", p.stderr.String())
		}
	})
}
