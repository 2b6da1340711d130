package loop

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/amanat/dbops/internal/testsrv"
)

// TestReadyDespiteOutage: /readyz is 503 until a good revision is loaded,
// then 200 even when every stack's database is down: the outage is the
// stack's condition, not the process's readiness.
func TestReadyDespiteOutage(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := rd.Client(t)
	r := newRepo(t)
	r.commit(map[string]string{"a.yaml": redisStack("cache", rd.URL(), "64mb", "")})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)
	srv := httptest.NewServer(l.Handler(HandlerOptions{}))
	t.Cleanup(srv.Close)
	readyz := func() int {
		t.Helper()
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := readyz(); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before any revision: %d, want 503", code)
	}
	cycle(t, l)
	c.Do(context.Background(), "SHUTDOWN", "NOSAVE")
	if err := rd.WaitExit(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stack failing", func() bool { cycle(t, l); return readyOf(l, "cache").Reason == ReasonPlanFailed })
	if code := readyz(); code != http.StatusOK {
		t.Errorf("/readyz with the only stack's Redis down: %d, want 200", code)
	}
}

// TestCountersStartAtZero: a loaded stack's counters exist at 0 before
// anything fails, so increase() sees the first failure.
func TestCountersStartAtZero(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	r := newRepo(t)
	r.commit(map[string]string{"a.yaml": redisStack("cache", rd.URL(), "64mb", "") +
		"  backups:\n    - {name: rdb, source: redis, schedule: \"@every 1h\", destination: " + t.TempDir() + ", retention: {keepLast: 2}}\n"})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)
	l.fetch(context.Background()) // loaded, not reconciled yet
	m := scrape(t, l)
	for _, want := range []string{
		`dbops_reconcile_failures_total{stack="cache"} 0`,
		`dbops_stack_lock_held_elsewhere_total{stack="cache"} 0`,
		`dbops_changes_applied_total{resource="redis",stack="cache"} 0`,
		`dbops_changes_failed_total{resource="redis",stack="cache"} 0`,
		`dbops_backup_failures_total{backup_job="rdb",stack="cache"} 0`,
		`dbops_backup_verification_failures_total{backup_job="rdb",stack="cache"} 0`,
		`dbops_backup_skipped_total{backup_job="rdb",stack="cache"} 0`,
		`dbops_backups_pruned_total{backup_job="rdb",stack="cache"} 0`,
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("no %s after the stack was loaded", want)
		}
	}
	if strings.Contains(m, `resource="postgres"`) {
		t.Errorf("a Redis-only stack has postgres series:\n%s", grep(m, "postgres"))
	}
}

func TestBuildInfoMetric(t *testing.T) {
	m := NewMetrics()
	m.SetBuildInfo(BuildInfo{Version: "v1.2.3", Revision: "abc123", GoVersion: "go1.99"})
	l := New(Options{Metrics: m, Source: nil})
	if got := scrape(t, l); !strings.Contains(got, `dbops_build_info{goversion="go1.99",revision="abc123",version="v1.2.3"} 1`) {
		t.Errorf("build info:\n%s", grep(got, "build_info"))
	}
	if b := ReadBuildInfo("v9"); b.Version != "v9" || !strings.HasPrefix(b.GoVersion, "go") || b.Revision == "" {
		t.Errorf("ReadBuildInfo = %+v", b)
	}
}
