package loop

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile/notify"
)

// statusAPI stands in for the GitHub and GitLab commit status APIs: it
// records "METHOD URI state context/name" per request and answers 201.
type statusAPI struct {
	mu   sync.Mutex
	reqs []string
	auth []string
}

func newStatusAPI(t *testing.T) (*statusAPI, *httptest.Server) {
	t.Helper()
	a := &statusAPI{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ State, Context, Name string }
		json.NewDecoder(r.Body).Decode(&body)
		a.mu.Lock()
		a.reqs = append(a.reqs, r.Method+" "+r.RequestURI+" "+body.State+" "+body.Context+body.Name)
		a.auth = append(a.auth, r.Header.Get("Authorization")+r.Header.Get("PRIVATE-TOKEN"))
		a.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(srv.Close)
	return a, srv
}

func (a *statusAPI) got() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.reqs...)
}

func startNotify(t *testing.T, l *Loop, logs *testsrv.Buffer) {
	t.Helper()
	d := notify.New(notify.Options{Backoff: 10 * time.Millisecond, Count: l.o.Metrics.CountNotification,
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	d.Start(ctx)
	t.Cleanup(func() { cancel(); d.Wait() })
	l.o.Notify = d
}

// TestLoopCommitStatuses: applying a commit posts pending then success (or
// failure) on that commit to GitHub and GitLab, with context dbops/<stack>;
// retries of a failing commit post nothing more; the fixed commit gets its
// own pending and success.
func TestLoopCommitStatuses(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	gh, ghSrv := newStatusAPI(t)
	gl, glSrv := newStatusAPI(t)
	t.Setenv("DBOPS_TEST_STATUS_TOKEN", "status-token-0042")
	receivers := "---\napiVersion: dbops/v1\nkind: Notification\nmetadata: {name: gh}\nspec:\n  type: github\n  token: ${DBOPS_TEST_STATUS_TOKEN}\n" +
		"  apiURL: " + ghSrv.URL + "/api/v3\n" +
		"---\napiVersion: dbops/v1\nkind: Notification\nmetadata: {name: gl}\nspec:\n  type: gitlab\n  token: ${DBOPS_TEST_STATUS_TOKEN}\n" +
		"  project: group/infra\n  apiURL: " + glSrv.URL + "/api/v4\n"
	stack := "apiVersion: dbops/v1\nkind: Stack\nmetadata: {name: shop}\nspec:\n  postgres:\n    url: " + pgURL + "\n    migrations: {dir: ./migrations}\n"
	r := newRepo(t)
	sha1 := r.commit(map[string]string{
		"shop.yaml": stack, "notifications.yaml": receivers,
		"migrations/00001_a.sql": "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n",
	})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)
	// The repository is "on GitHub" for the github receiver's default.
	l.o.RepoURL = "git@github.com:acme/infra.git"
	startNotify(t, l, &logs)

	cycle(t, l)
	sha2 := r.commit(map[string]string{"migrations/00002_b.sql": "-- +goose Up\nSELECT * FROM no_such_table;\n-- +goose Down\nSELECT 1;\n"})
	cycle(t, l)
	if readyOf(l, "shop").Reason != ReasonApplyFail {
		t.Fatalf("condition %+v, want ApplyFailed", readyOf(l, "shop"))
	}
	// Retried, failing the same way: no new status, and the condition's
	// lastTransitionTime stays (the "applying" in between is no transition).
	since := readyOf(l, "shop").Since
	failing := cycles(t, l, "shop")
	eventually(t, "a retry", func() bool { cycle(t, l); return cycles(t, l, "shop") > failing })
	if c := readyOf(l, "shop"); c.Reason != ReasonApplyFail || !c.Since.Equal(since) {
		t.Errorf("after a retry failing the same way: %+v, want ApplyFailed since %v", c, since)
	}
	sha3 := r.commit(map[string]string{"migrations/00002_b.sql": "-- +goose Up\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE b;\n"})
	eventually(t, "the fixed commit applied", func() bool { cycle(t, l); return readyOf(l, "shop").Reason == ReasonSucceeded })

	tests := []struct {
		name  string
		api   *statusAPI
		path  string
		fail  string
		ctxt  string
		token string
	}{
		{"github", gh, "/api/v3/repos/acme/infra/statuses/", "failure", "dbops/shop", "Bearer status-token-0042"},
		{"gitlab", gl, "/api/v4/projects/group%2Finfra/statuses/", "failed", "dbops/shop", "status-token-0042"},
	}
	for _, tt := range tests {
		var want []string
		for _, s := range []struct{ sha, state string }{{sha1, "pending"}, {sha1, "success"}, {sha2, "pending"}, {sha2, tt.fail}, {sha3, "pending"}, {sha3, "success"}} {
			want = append(want, "POST "+tt.path+s.sha+" "+s.state+" "+tt.ctxt)
		}
		eventually(t, tt.name+" statuses", func() bool { return len(tt.api.got()) >= len(want) })
		if got := tt.api.got(); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s requests:\n%s\nwant:\n%s", tt.name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		tt.api.mu.Lock()
		if tt.api.auth[0] != tt.token {
			t.Errorf("%s authentication %q, want %q", tt.name, tt.api.auth[0], tt.token)
		}
		tt.api.mu.Unlock()
	}
	if m := scrape(t, l); !strings.Contains(m, `dbops_notifications_total{provider="github",result="sent"} 6`) {
		t.Errorf("deliveries not counted:\n%s", grep(m, "notifications"))
	}
	if strings.Contains(logs.String(), "status-token-0042") {
		t.Errorf("logs hold the token:\n%s", logs.String())
	}
}

// TestLoopFailureThreshold: with failureThreshold 3 a failing stack is
// reported once, when the third cycle in a row fails, and "resolved"
// follows; a receiver whose threshold is never reached hears nothing.
func TestLoopFailureThreshold(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := rd.Client(t)
	third, thirdSrv := newHookReceiver(t)
	never, neverSrv := newHookReceiver(t)
	r := newRepo(t)
	r.commit(map[string]string{
		"cache.yaml": redisStack("cache", rd.URL(), "64mb", ""),
		"notifications.yaml": notificationDoc("third", "webhook", thirdSrv.URL, "  failureThreshold: 3\n") +
			notificationDoc("never", "webhook", neverSrv.URL, "  failureThreshold: 1000\n"),
	})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)
	startNotify(t, l, &logs)
	ctx := runLoop(t, l)
	eventually(t, "first apply", func() bool { return readyOf(l, "cache").Reason == ReasonSucceeded })
	c.Do(ctx, "SHUTDOWN", "NOSAVE")
	if err := rd.WaitExit(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	l.Cycle(ctx)
	eventually(t, "the failed event at the third failure", func() bool { return len(third.got()) >= 1 })
	if n := cycles(t, l, "cache"); n < 1+3 {
		t.Errorf("failure reported after %d failed cycles, want 3", n-1)
	}
	failing := cycles(t, l, "cache")
	eventually(t, "more retries", func() bool { return cycles(t, l, "cache") >= failing+2 })
	if err := rd.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "resolved event", func() bool {
		evs := third.got()
		return len(evs) > 0 && evs[len(evs)-1].Event == notify.EventResolved
	})
	var kinds []string
	for _, ev := range third.got() {
		kinds = append(kinds, ev.Event)
	}
	if got := strings.Join(kinds, " "); got != "failed resolved" {
		t.Errorf("threshold 3 receiver got %s, want: failed resolved", got)
	}
	if got := never.got(); len(got) != 0 {
		t.Errorf("threshold 1000 receiver got %+v", got)
	}
}

// TestLoopDeferredOnly: a cycle whose only change is risky and outside the
// window logs no "applying", posts no pending status, and reports one
// deferred event however many cycles see it; in the window it is applied.
func TestLoopDeferredOnly(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := rd.Client(t)
	c.ConfigSet(context.Background(), "appendonly", "yes")
	hook, hookSrv := newHookReceiver(t)
	gh, ghSrv := newStatusAPI(t)
	t.Setenv("DBOPS_TEST_STATUS_TOKEN", "status-token-0043")
	r := newRepo(t)
	sha := r.commit(map[string]string{
		"a.yaml": "apiVersion: dbops/v1\nkind: Stack\nmetadata: {name: cache}\nspec:\n" +
			"  maintenanceWindows: [{start: \"0 2 * * *\", duration: 1h}]\n" +
			"  redis:\n    url: " + rd.URL() + "\n    config: {appendonly: \"no\"}\n",
		"n.yaml": notificationDoc("ops", "webhook", hookSrv.URL, "  events: [deferred, applied]\n") +
			"---\napiVersion: dbops/v1\nkind: Notification\nmetadata: {name: gh}\nspec:\n  type: github\n  token: ${DBOPS_TEST_STATUS_TOKEN}\n" +
			"  repository: acme/infra\n  apiURL: " + ghSrv.URL + "\n",
	})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)
	startNotify(t, l, &logs)
	var clock atomic.Pointer[time.Time]
	set := func(s string) { tm, _ := time.Parse(time.RFC3339, s); clock.Store(&tm) }
	l.o.Reconcile.Now = func() time.Time { return *clock.Load() }

	set("2026-11-25T01:00:00Z")
	cycle(t, l)
	cycle(t, l)
	if readyOf(l, "cache").Reason != ReasonDeferred {
		t.Fatalf("condition %+v, want RiskyChangeDeferred", readyOf(l, "cache"))
	}
	if strings.Contains(logs.String(), `"msg":"applying"`) {
		t.Errorf("a cycle with every change deferred logged applying:\n%s", logs.String())
	}
	set("2026-11-25T02:10:00Z")
	cycle(t, l)
	if got := testsrv.ConfigGet(t, c, "appendonly"); got != "no" {
		t.Fatalf("in the window: appendonly=%s", got)
	}
	// The resource label is the server, as in /status and drift_resources.
	if m := scrape(t, l); !strings.Contains(m, `dbops_changes_applied_total{resource="redis",stack="cache"} 1`+"\n") {
		t.Errorf("applied change not counted under resource=redis:\n%s", grep(m, "changes_applied"))
	}
	eventually(t, "the applied event", func() bool { return len(hook.got()) >= 2 })
	var kinds []string
	for _, ev := range hook.got() {
		kinds = append(kinds, ev.Event+":"+strings.Join(ev.Changes, ","))
	}
	if got, want := strings.Join(kinds, " "), "deferred:redis.config.appendonly: yes -> no applied:redis.config.appendonly: yes -> no"; got != want {
		t.Errorf("events %s, want %s", got, want)
	}
	want := []string{"POST /repos/acme/infra/statuses/" + sha + " pending dbops/cache", "POST /repos/acme/infra/statuses/" + sha + " success dbops/cache"}
	eventually(t, "statuses", func() bool { return len(gh.got()) >= 2 })
	if got := gh.got(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("statuses:\n%s\nwant (none while deferred):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// slackReceiver stands in for a Slack incoming webhook.
func slackReceiver(t *testing.T) (*[]string, *sync.Mutex, *httptest.Server) {
	t.Helper()
	var mu sync.Mutex
	var texts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var msg notify.SlackMessage
		json.Unmarshal(b, &msg)
		mu.Lock()
		texts = append(texts, msg.Text)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return &texts, &mu, srv
}

// TestLoopBackupEventsToSlack: a backup taken and a backup that fails are
// told to a Slack receiver as one readable message each.
func TestLoopBackupEventsToSlack(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	dest := t.TempDir()
	blocked := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(blocked, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	texts, mu, srv := slackReceiver(t)
	r := newRepo(t)
	r.commit(map[string]string{
		"a.yaml": redisStack("cache", rd.URL(), "64mb", "") +
			"  backups:\n    - {name: rdb, source: redis, schedule: \"@every 1h\", destination: " + dest + ", retention: {keepLast: 2}}\n" +
			"    - {name: bad, source: redis, schedule: \"@every 1h\", destination: " + blocked + "/sub, retention: {keepLast: 2}}\n",
		"n.yaml": notificationDoc("ops", "slack", srv.URL+"/services/T0/B0/x", "  events: [backupSucceeded, backupFailed, verificationFailed]\n"),
	})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)
	startNotify(t, l, &logs)
	cycle(t, l)
	got := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), (*texts)...) }
	eventually(t, "two Slack messages", func() bool { return len(got()) >= 2 })
	var ok, bad string
	for _, m := range got() {
		switch {
		case strings.HasPrefix(m, ":floppy_disk: *cache* backupSucceeded: backup rdb taken: "):
			ok = m
		case strings.HasPrefix(m, ":x: *cache* backupFailed: backup bad failed\n• "):
			bad = m
		}
	}
	if ok == "" || bad == "" || len(got()) != 2 {
		t.Errorf("Slack messages:\n%s\nwant one backupSucceeded for rdb and one backupFailed for bad", strings.Join(got(), "\n---\n"))
	}
	// Durations in /status are numbers too, equal to the text form.
	st, _ := stateOf(l, "cache")
	if d, err := time.ParseDuration(st.Duration); err != nil || d.Seconds() != st.DurationSeconds {
		t.Errorf("stack duration %q, durationSeconds %v", st.Duration, st.DurationSeconds)
	}
	for _, b := range st.Backups {
		if b.Last == nil {
			t.Fatalf("backup %s has no last run", b.Job)
		}
		if d, err := time.ParseDuration(b.Last.Duration); err != nil || d.Seconds() != b.Last.DurationSeconds {
			t.Errorf("backup %s duration %q, durationSeconds %v", b.Job, b.Last.Duration, b.Last.DurationSeconds)
		}
	}
	if !regexp.MustCompile(`"msg":"backup taken".*"duration_seconds":[0-9.e-]+[,}]`).MatchString(logs.String()) {
		t.Errorf("the backup log line has no duration_seconds number:\n%s", logs.String())
	}
}
