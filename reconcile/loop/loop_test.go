package loop

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile/lock"
	"github.com/amanat/dbops/reconcile/source"
)

func TestCommitsAppliedAndBadCommitRejected(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := rd.Client(t)
	r := newRepo(t)
	first := r.commit(map[string]string{"stacks/cache.yaml": redisStack("cache", rd.URL(), "64mb", "")})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)

	cycle(t, l)
	if got := testsrv.ConfigGet(t, c, "maxmemory"); got != "67108864" {
		t.Fatalf("first commit not applied: maxmemory=%s\n%s", got, logs.String())
	}
	if st := l.Status(); st.Revision == nil || st.Revision.ID != first {
		t.Fatalf("revision in force = %+v, want %s", st.Revision, first)
	}

	second := r.commit(map[string]string{"stacks/cache.yaml": redisStack("cache", rd.URL(), "96mb", "")})
	cycle(t, l)
	if got := testsrv.ConfigGet(t, c, "maxmemory"); got != "100663296" {
		t.Fatalf("new commit not applied: maxmemory=%s", got)
	}

	// A bad commit: rejected with file, stack and field; nothing of it applied.
	bad := r.commit(map[string]string{
		"stacks/cache.yaml": redisStack("cache", rd.URL(), "12xb", ""),
		"stacks/other.yaml": redisStack("other", rd.URL(), "1mb", ""),
	})
	cycle(t, l)
	st := l.Status()
	if st.Revision.ID != second {
		t.Errorf("revision in force = %s, want the last good %s", st.Revision.ID, second)
	}
	if st.Rejected == nil || st.Rejected.ID != bad || !strings.Contains(strings.Join(st.Rejected.Errors, "\n"),
		`stacks/cache.yaml: stack "cache": spec.redis.config.maxmemory: "12xb" is not a memory size`) {
		t.Fatalf("rejection = %+v", st.Rejected)
	}
	// Files are named by their path in the repository, not the cache folder.
	for _, e := range st.Rejected.Errors {
		if !strings.HasPrefix(e, "stacks/") {
			t.Errorf("rejection error does not start with the repository path: %s", e)
		}
	}
	// Seen again on later cycles: logged once, its time of rejection kept.
	cycle(t, l)
	cycle(t, l)
	if again := l.Status().Rejected; again == nil || !again.At.Equal(st.Rejected.At) {
		t.Errorf("rejected.at moved: %v, then %+v", st.Rejected.At, again)
	}
	if n := strings.Count(logs.String(), `"msg":"revision rejected; nothing of it is applied"`); n != len(st.Rejected.Errors) {
		t.Errorf("rejection logged %d times for %d error(s)", n, len(st.Rejected.Errors))
	}
	if got := testsrv.ConfigGet(t, c, "maxmemory"); got != "100663296" {
		t.Errorf("a rejected revision changed maxmemory to %s", got)
	}
	if !strings.Contains(logs.String(), "revision rejected") {
		t.Error("rejection not logged")
	}
	metrics := scrape(t, l)
	if !strings.Contains(metrics, `dbops_rejected_revision_info{revision="`+bad+`"} 1`) ||
		!strings.Contains(metrics, `dbops_revision_info{revision="`+second+`"} 1`) {
		t.Errorf("metrics lack the revisions in force and rejected:\n%s", grep(metrics, "revision"))
	}
	if ok, why := l.Ready(); !ok {
		t.Errorf("not ready with a good revision in force: %s", why)
	}

	// The last good revision is still enforced: drift is put back.
	c.ConfigSet(context.Background(), "maxmemory", "1mb")
	cycle(t, l)
	if got := testsrv.ConfigGet(t, c, "maxmemory"); got != "100663296" {
		t.Errorf("drift under a rejected revision not corrected: maxmemory=%s", got)
	}

	fixed := r.commit(map[string]string{"stacks/cache.yaml": redisStack("cache", rd.URL(), "128mb", ""), "stacks/other.yaml": ""})
	cycle(t, l)
	st = l.Status()
	if st.Revision.ID != fixed || st.Rejected != nil {
		t.Errorf("fixed commit: revision %s rejected %+v", st.Revision.ID, st.Rejected)
	}
	if got := testsrv.ConfigGet(t, c, "maxmemory"); got != "134217728" {
		t.Errorf("fixed commit not applied: maxmemory=%s", got)
	}
	if strings.Contains(scrape(t, l), "dbops_rejected_revision_info{") {
		t.Error("rejected revision still reported after a good one")
	}
}

func TestRedisRestartGetsSettingsBack(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{}) // no config file: a restart drops runtime settings
	c := rd.Client(t)
	r := newRepo(t)
	r.commit(map[string]string{"cache.yaml": redisStack("cache", rd.URL(), "64mb", "")})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)
	l.o.Interval = 200 * 1e6
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	defer func() { cancel(); <-done }()

	eventually(t, "first apply", func() bool { return testsrv.ConfigGet(t, c, "maxmemory") == "67108864" })
	if err := rd.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "settings back after the restart", func() bool { return testsrv.ConfigGet(t, c, "maxmemory") == "67108864" })
	if s, _ := stateOf(l, "cache"); s.LastSuccess.IsZero() {
		t.Errorf("no successful cycle recorded: %+v", s)
	}
}

func TestSuspendAndReportOnly(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := rd.Client(t)
	rd2 := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c2 := rd2.Client(t)
	r := newRepo(t)
	r.commit(map[string]string{
		"a.yaml": redisStack("suspended", rd.URL(), "64mb", "  suspend: true\n"),
		"b.yaml": redisStack("reporting", rd2.URL(), "64mb", "  driftPolicy: report\n"),
	})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)
	cycle(t, l)
	if testsrv.ConfigGet(t, c, "maxmemory") != "0" || testsrv.ConfigGet(t, c2, "maxmemory") != "0" {
		t.Fatal("a suspended or report-only stack was applied")
	}
	s, _ := stateOf(l, "suspended")
	if s.Resources[0].State != StateSuspended || s.Conditions[0].Reason != ReasonSuspended || len(s.Resources[0].Changes) != 2 {
		t.Errorf("suspended stack status: %+v", s)
	}
	s, _ = stateOf(l, "reporting")
	if s.Resources[0].State != StateDrifted || s.Conditions[0].Reason != ReasonDrift {
		t.Errorf("report-only stack status: %+v", s)
	}
	if m := scrape(t, l); !strings.Contains(m, `dbops_drift_resources{resource="redis",stack="reporting"} 2`) {
		t.Errorf("drift metric missing:\n%s", grep(m, "drift"))
	}

	// Un-suspending applies on the next cycle.
	r.commit(map[string]string{"a.yaml": redisStack("suspended", rd.URL(), "64mb", "")})
	cycle(t, l)
	if got := testsrv.ConfigGet(t, c, "maxmemory"); got != "67108864" {
		t.Errorf("un-suspended stack not applied: %s", got)
	}
}

func TestSingleWriterRedisOnly(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := rd.Client(t)
	// Another process holds the stack's lock.
	other, err := lock.Redis(context.Background(), c, "cache", "other-process", 60e9)
	if err != nil {
		t.Fatal(err)
	}
	r := newRepo(t)
	r.commit(map[string]string{"a.yaml": redisStack("cache", rd.URL(), "64mb", "")})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)
	cycle(t, l)
	if got := testsrv.ConfigGet(t, c, "maxmemory"); got != "0" {
		t.Fatalf("applied while another process held the lock: %s", got)
	}
	if s, _ := stateOf(l, "cache"); s.Conditions[0].Reason != ReasonLocked {
		t.Errorf("status reason %q, want %s", s.Conditions[0].Reason, ReasonLocked)
	}
	other.Release(context.Background())
	cycle(t, l)
	if got := testsrv.ConfigGet(t, c, "maxmemory"); got != "67108864" {
		t.Errorf("not applied once the lock was free: %s", got)
	}
	if n, _ := c.Exists(context.Background(), "dbops:lock:cache").Result(); n != 0 {
		t.Error("the loop did not release its Redis lock")
	}
}

func TestWebhook(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := rd.Client(t)
	r := newRepo(t)
	r.commit(map[string]string{"a.yaml": redisStack("cache", rd.URL(), "64mb", "")})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs) // interval 1h: only the webhook brings the next commit
	srv := httptest.NewServer(l.Handler(HandlerOptions{WebhookSecret: []byte("hook-secret-123")}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	defer func() { cancel(); <-done }()
	eventually(t, "first apply", func() bool { return testsrv.ConfigGet(t, c, "maxmemory") == "67108864" })

	r.commit(map[string]string{"a.yaml": redisStack("cache", rd.URL(), "32m", "")})
	body := `{"ref":"refs/heads/main"}`
	for _, sig := range []string{"", "sha256=00", "sha256=" + sign("wrong-secret", body), "sha1=" + sign("hook-secret-123", body)} {
		resp := post(t, srv.URL+"/hooks/git", body, sig)
		if resp != http.StatusUnauthorized {
			t.Errorf("signature %q: status %d, want 401", sig, resp)
		}
	}
	if len(l.trigger) != 0 {
		t.Fatal("an unauthenticated webhook triggered a fetch")
	}
	if got := testsrv.ConfigGet(t, c, "maxmemory"); got != "67108864" {
		t.Fatalf("changed without a valid webhook: %s", got)
	}
	if resp := post(t, srv.URL+"/hooks/git", body, "sha256="+sign("hook-secret-123", body)); resp != http.StatusAccepted {
		t.Fatalf("good signature: status %d, want 202", resp)
	}
	eventually(t, "commit applied after the webhook", func() bool { return testsrv.ConfigGet(t, c, "maxmemory") == "32000000" })

	for _, path := range []string{"/healthz", "/readyz", "/status", "/metrics"} {
		res, err := http.Get(srv.URL + path)
		if err != nil || res.StatusCode != 200 {
			t.Errorf("GET %s: %v %v", path, res.StatusCode, err)
		}
		res.Body.Close()
	}
}

func TestDirSourceRenameSave(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := rd.Client(t)
	dir := t.TempDir()
	write := func(maxmemory string) { // as editors do: write a temp file, rename it over
		tmp := filepath.Join(dir, ".stack.yaml.swp")
		os.WriteFile(tmp, []byte(redisStack("cache", rd.URL(), maxmemory, "")), 0o644)
		if err := os.Rename(tmp, filepath.Join(dir, "stack.yaml")); err != nil {
			t.Fatal(err)
		}
	}
	write("64mb")
	src, err := source.NewDir(source.DirOptions{Dir: dir, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var logs testsrv.Buffer
	l := newLoop(t, src, &logs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	defer func() { cancel(); <-done }()
	eventually(t, "first apply", func() bool { return testsrv.ConfigGet(t, c, "maxmemory") == "67108864" })
	write("16m")
	eventually(t, "rename-saved change applied", func() bool { return testsrv.ConfigGet(t, c, "maxmemory") == "16000000" })
}

// brokenStack manages another parameter than redisStack: two stacks
// managing one parameter of a server are refused at load.
const brokenStack = "apiVersion: dbops/v1\nkind: Stack\nmetadata:\n  name: broken\nspec:\n  redis:\n    url: ${BROKEN_URL}\n    config: {hz: 10}\n"

func TestCredentialsAbsentFromLogsAndStatus(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{Password: "redis-Secret-9931"})
	t.Setenv("CACHE_URL", rd.URL())
	t.Setenv("BROKEN_URL", strings.Replace(rd.URL(), "redis-Secret-9931", "wrong-Secret-5512", 1))
	r := newRepo(t)
	r.commit(map[string]string{"a.yaml": redisStack("cache", "${CACHE_URL}", "64mb", "") + "---\n" + brokenStack})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)
	cycle(t, l)
	status, _ := json.Marshal(l.Status())
	all := logs.String() + string(status) + scrape(t, l)
	if !strings.Contains(all, "WRONGPASS") && !strings.Contains(all, "invalid") {
		t.Errorf("the broken stack's auth failure is not reported:\n%s", status)
	}
	for _, secret := range []string{"redis-Secret-9931", "wrong-Secret-5512"} {
		if strings.Contains(all, secret) {
			t.Errorf("%s appears in logs, status or metrics", secret)
		}
	}
}

func sign(secret, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return hex.EncodeToString(mac.Sum(nil))
}

func post(t *testing.T, url, body, sig string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	if sig != "" {
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func scrape(t *testing.T, l *Loop) string {
	t.Helper()
	srv := httptest.NewServer(l.Handler(HandlerOptions{}))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func grep(s, word string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, word) {
			out = append(out, line)
		}
	}
	return fmt.Sprint(strings.Join(out, "\n"))
}

func TestLoopTakesDueBackupsOnce(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	dest := t.TempDir()
	r := newRepo(t)
	r.commit(map[string]string{"a.yaml": redisStack("cache", rd.URL(), "64mb", "") +
		"  backups:\n    - {name: rdb, source: redis, schedule: \"@every 1h\", destination: " + dest + ", retention: {keepLast: 2}}\n"})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)
	for range 3 {
		cycle(t, l)
	}
	files, _ := filepath.Glob(filepath.Join(dest, "cache-rdb-*.rdb"))
	if len(files) != 1 {
		t.Fatalf("backups after three cycles within the hour: %v (want exactly one)", files)
	}
	s, _ := stateOf(l, "cache")
	if len(s.Backups) != 1 || s.Backups[0].Last == nil || !s.Backups[0].Last.OK || s.Backups[0].Next.IsZero() {
		t.Errorf("backup status: %+v", s.Backups)
	}
	m := scrape(t, l)
	for _, name := range []string{"dbops_backup_size_bytes", "dbops_backup_duration_seconds", "dbops_backup_last_success_timestamp_seconds"} {
		if !strings.Contains(m, name+`{backup_job="rdb",stack="cache"}`) {
			t.Errorf("backup metric %s missing:\n%s", name, grep(m, "backup"))
		}
	}
	// A new process (a restart) seeds from the files: not due, no new backup.
	l2 := newLoop(t, r.source(t), &logs)
	cycle(t, l2)
	if files, _ := filepath.Glob(filepath.Join(dest, "cache-rdb-*.rdb")); len(files) != 1 {
		t.Errorf("a restart took a backup that was not due: %v", files)
	}
}

func TestTwoLoopsTakeABackupOnce(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	dest := t.TempDir()
	r := newRepo(t)
	r.commit(map[string]string{"a.yaml": redisStack("cache", rd.URL(), "64mb", "") +
		"  backups:\n    - {name: rdb, source: redis, schedule: \"@daily\", destination: " + dest + ", retention: {keepLast: 5}}\n"})
	var logs testsrv.Buffer
	a, b := newLoop(t, r.source(t), &logs), newLoop(t, r.source(t), &logs)
	ctx := context.Background()
	a.Cycle(ctx)
	b.Cycle(ctx)
	a.Wait()
	b.Wait()
	if files, _ := filepath.Glob(filepath.Join(dest, "cache-rdb-*.rdb")); len(files) != 1 {
		t.Errorf("two replicas took %d backups of one due job, want 1: %v\n%s", len(files), files, logs.String())
	}
}

// A change arriving while its stack is applying is applied right after,
// not an interval later, and the new revision does not delete the files
// of the one still being applied.
func TestChangeDuringApply(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := rd.Client(t)
	dir := t.TempDir()
	files := map[string]string{
		"migrations/00001_slow.sql": "-- +goose Up\nCREATE TABLE slow (id int);\nSELECT pg_sleep(2);\n-- +goose Down\nDROP TABLE slow;\n",
		"migrations/00002_notx.sql": "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE TABLE notx (id int);\n-- +goose Down\nDROP TABLE notx;\n",
	}
	for name, body := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	stack := func(maxmemory string) string {
		return redisStack("shop", rd.URL(), maxmemory, "  postgres:\n    url: "+pgURL+"\n    migrations: {dir: ./migrations}\n")
	}
	os.WriteFile(filepath.Join(dir, "stack.yaml"), []byte(stack("64mb")), 0o644)
	src, err := source.NewDir(source.DirOptions{Dir: dir, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var logs testsrv.Buffer
	l := newLoop(t, src, &logs) // interval 1h: only the file change brings the new value
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	defer func() { cancel(); <-done }()

	db := testsrv.OpenDB(t, pgURL)
	eventually(t, "the slow migration running", func() bool {
		var n int
		db.QueryRow("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(2)%' AND pid <> pg_backend_pid()").Scan(&n)
		return n > 0
	})
	tmp := filepath.Join(dir, "stack.yaml.tmp")
	os.WriteFile(tmp, []byte(stack("32m")), 0o644)
	os.Rename(tmp, filepath.Join(dir, "stack.yaml"))
	eventually(t, "the change made during the apply", func() bool { return testsrv.ConfigGet(t, c, "maxmemory") == "32000000" })
	var notx bool
	db.QueryRow("SELECT to_regclass('notx') IS NOT NULL").Scan(&notx)
	if !notx {
		t.Error("the migration after the slow one did not run")
	}
	if strings.Contains(logs.String(), "stack failed") {
		t.Errorf("a stack cycle failed:\n%s", logs.String())
	}
}

func TestRiskyChangeWaitsForTheWindow(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := rd.Client(t)
	c.ConfigSet(context.Background(), "appendonly", "yes")
	r := newRepo(t)
	r.commit(map[string]string{"a.yaml": "apiVersion: dbops/v1\nkind: Stack\nmetadata: {name: cache}\nspec:\n" +
		"  maintenanceWindows: [{start: \"0 2 * * *\", duration: 1h}]\n" +
		"  redis:\n    url: " + rd.URL() + "\n    config: {appendonly: \"no\", hz: \"20\"}\n"})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)
	var clock atomic.Pointer[time.Time]
	set := func(s string) { tm, _ := time.Parse(time.RFC3339, s); clock.Store(&tm) }
	l.o.Reconcile.Now = func() time.Time { return *clock.Load() }

	set("2026-11-25T01:00:00Z")
	cycle(t, l)
	if testsrv.ConfigGet(t, c, "appendonly") != "yes" || testsrv.ConfigGet(t, c, "hz") != "20" {
		t.Fatalf("outside the window: appendonly=%s hz=%s, want the safe change only", testsrv.ConfigGet(t, c, "appendonly"), testsrv.ConfigGet(t, c, "hz"))
	}
	s, _ := stateOf(l, "cache")
	if s.Conditions[0].Reason != ReasonDeferred || !strings.Contains(s.Conditions[0].Message, "2026-11-25T02:00:00Z") {
		t.Errorf("condition %+v, want RiskyChangeDeferred until 02:00", s.Conditions[0])
	}
	set("2026-11-25T02:10:00Z")
	cycle(t, l)
	if got := testsrv.ConfigGet(t, c, "appendonly"); got != "no" {
		t.Errorf("inside the window the deferred change was not applied: appendonly=%s", got)
	}
	if s, _ := stateOf(l, "cache"); s.Conditions[0].Reason != ReasonSucceeded {
		t.Errorf("condition after the window: %+v", s.Conditions[0])
	}
}
