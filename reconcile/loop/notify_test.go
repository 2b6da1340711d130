package loop

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile/notify"
	"github.com/amanat/dbops/spec"
)

// hookReceiver is a local HTTP server standing in for a webhook endpoint.
type hookReceiver struct {
	mu     sync.Mutex
	events []notify.Event
	sigs   []string
	bodies [][]byte
}

func newHookReceiver(t *testing.T) (*hookReceiver, *httptest.Server) {
	t.Helper()
	h := &hookReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev notify.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.events, h.sigs, h.bodies = append(h.events, ev), append(h.sigs, r.Header.Get(notify.SignatureHeader)), append(h.bodies, body)
		h.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return h, srv
}

func (h *hookReceiver) got() []notify.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]notify.Event(nil), h.events...)
}

// delivered returns the events hook received before a marker published
// after them: the dispatcher delivers in order from one goroutine, so a
// wrong duplicate published earlier has arrived by then (no sleep). The
// receiver must want "applied" events of stack.
func delivered(t *testing.T, d *notify.Dispatcher, hook *hookReceiver, stack string) []notify.Event {
	t.Helper()
	const marker = "test marker: everything published before has been delivered"
	d.Publish(notify.Event{Event: spec.EventApplied, Stack: stack, Summary: marker})
	var evs []notify.Event
	eventually(t, "the marker event", func() bool {
		evs = hook.got()
		return len(evs) > 0 && evs[len(evs)-1].Summary == marker
	})
	return evs[:len(evs)-1]
}

func notificationDoc(name, typ, url, extra string) string {
	return "---\napiVersion: dbops/v1\nkind: Notification\nmetadata: {name: " + name + "}\nspec:\n  type: " + typ + "\n  url: " + url + "\n" + extra
}

// TestLoopNotifies: the loop reports an apply (with its changes) and a
// rejected revision to a signed webhook, sends nothing to a receiver of
// another stack, and goes on reconciling while one receiver is down and
// another never answers.
func TestLoopNotifies(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := rd.Client(t)
	hook, hookSrv := newHookReceiver(t)
	other, otherSrv := newHookReceiver(t)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL + "/down"
	down.Close()
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(hang); slow.Close() })
	const key = "loop-test-hmac-key-0042"
	t.Setenv("DBOPS_TEST_HOOK_SECRET", key)

	receivers := notificationDoc("ops", "webhook", hookSrv.URL+"/hook", "  secret: ${DBOPS_TEST_HOOK_SECRET}\n  events: [applied, failed, rejected]\n") +
		notificationDoc("other", "webhook", otherSrv.URL, "  events: [applied, failed, rejected]\n  stacks: [other]\n") +
		notificationDoc("down", "slack", downURL, "  events: [applied, rejected]\n") +
		notificationDoc("slow", "webhook", slow.URL, "  events: [applied, rejected]\n")
	r := newRepo(t)
	r.commit(map[string]string{
		"stacks/cache.yaml":  redisStack("cache", rd.URL(), "64mb", ""),
		"stacks/other.yaml":  redisStack("other", rd.URL(), "64mb", "") + "    # same server, different parameters\n",
		"notifications.yaml": receivers,
	})
	// "other" manages the same parameter: give it none.
	r.commit(map[string]string{"stacks/other.yaml": "apiVersion: dbops/v1\nkind: Stack\nmetadata:\n  name: other\nspec:\n  redis:\n    url: " + rd.URL() + "\n"})

	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)
	d := notify.New(notify.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Attempts: 2, Timeout: 300 * time.Millisecond,
		Backoff: 10 * time.Millisecond, QueueSize: 4, Count: l.o.Metrics.CountNotification})
	ctx, cancel := context.WithCancel(context.Background())
	d.Start(ctx)
	t.Cleanup(func() { cancel(); d.Wait() })
	l.o.Notify = d

	cycleDone := make(chan struct{})
	go func() { cycle(t, l); close(cycleDone) }()
	select {
	case <-cycleDone:
	case <-time.After(60 * time.Second):
		t.Fatal("the cycle did not end with a receiver down and one hanging")
	}
	if got := testsrv.ConfigGet(t, c, "maxmemory"); got != "67108864" {
		t.Fatalf("not applied: maxmemory=%s\n%s", got, logs.String())
	}
	eventually(t, "the applied event", func() bool { return len(hook.got()) >= 1 })
	ev := hook.got()[0]
	if ev.Event != "applied" || ev.Stack != "cache" || ev.Version != notify.PayloadVersion || len(ev.Revision) != 40 ||
		!strings.Contains(strings.Join(ev.Changes, "\n"), "maxmemory") {
		t.Errorf("applied event = %+v", ev)
	}
	hook.mu.Lock()
	if hook.sigs[0] != notify.Sign(key, hook.bodies[0]) {
		t.Errorf("signature %q, want %q", hook.sigs[0], notify.Sign(key, hook.bodies[0]))
	}
	hook.mu.Unlock()

	// In sync: no new event. A bad commit: one rejected event, however
	// many cycles see it.
	cycle(t, l)
	r.commit(map[string]string{"stacks/cache.yaml": redisStack("cache", rd.URL(), "12xb", "")})
	cycle(t, l)
	cycle(t, l)
	eventually(t, "the rejected event", func() bool { return len(hook.got()) >= 2 })
	time.Sleep(200 * time.Millisecond) // room for a wrong duplicate to arrive
	evs := hook.got()
	if len(evs) != 2 || evs[1].Event != "rejected" || !strings.Contains(strings.Join(evs[1].Errors, "\n"), `spec.redis.config.maxmemory: "12xb" is not a memory size`) {
		t.Errorf("events after the bad commit = %+v, want one rejected naming the field", evs)
	}
	// "other" applies nothing and fails nothing: its receiver hears nothing.
	if got := other.got(); len(got) != 0 {
		t.Errorf("the receiver of stack other got %+v", got)
	}
	eventually(t, "deliveries to the down receiver counted as failed", func() bool {
		return strings.Contains(scrape(t, l), `dbops_notifications_total{provider="slack",result="failed"}`)
	})
	if strings.Contains(logs.String(), key) || strings.Contains(logs.String(), strings.TrimPrefix(downURL, "http://")) {
		t.Errorf("logs hold the HMAC key or the receiver URL:\n%s", logs.String())
	}
}

// TestLoopNotifiesFailureOnceThenResolved: a stack whose Redis is down is
// retried many times but reported failed once; "resolved" follows when it
// recovers.
func TestLoopNotifiesFailureOnceThenResolved(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := rd.Client(t)
	hook, hookSrv := newHookReceiver(t)
	r := newRepo(t)
	r.commit(map[string]string{
		"cache.yaml":         redisStack("cache", rd.URL(), "64mb", ""),
		"notifications.yaml": notificationDoc("ops", "webhook", hookSrv.URL, ""), // default: failures
	})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)
	d := notify.New(notify.Options{Backoff: 10 * time.Millisecond, Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	dctx, cancel := context.WithCancel(context.Background())
	d.Start(dctx)
	t.Cleanup(func() { cancel(); d.Wait() })
	l.o.Notify = d
	ctx := runLoop(t, l)
	eventually(t, "first apply", func() bool { return readyOf(l, "cache").Reason == ReasonSucceeded })

	c.Do(ctx, "SHUTDOWN", "NOSAVE")
	if err := rd.WaitExit(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	l.Cycle(ctx)
	eventually(t, "stack failing", func() bool { return readyOf(l, "cache").Reason == ReasonPlanFailed })
	failing := cycles(t, l, "cache")
	eventually(t, "backoff retries", func() bool { return cycles(t, l, "cache") >= failing+3 })
	if err := rd.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "resolved event", func() bool {
		evs := hook.got()
		return len(evs) > 0 && evs[len(evs)-1].Event == notify.EventResolved
	})
	var kinds []string
	for _, ev := range hook.got() {
		kinds = append(kinds, ev.Event+"/"+ev.Stack)
	}
	if got, want := strings.Join(kinds, " "), "failed/cache resolved/cache"; got != want {
		t.Errorf("events %s, want %s (one failure per run of failures, applied not subscribed)", got, want)
	}
}

// TestLoopNotifiesDrift: driftPolicy report sends one drift event with the
// differences, not one per cycle.
func TestLoopNotifiesDrift(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	hook, hookSrv := newHookReceiver(t)
	r := newRepo(t)
	r.commit(map[string]string{
		"b.yaml":             redisStack("reporting", rd.URL(), "64mb", "  driftPolicy: report\n"),
		"notifications.yaml": notificationDoc("ops", "webhook", hookSrv.URL, "  events: [drift, applied]\n"),
	})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)
	d := notify.New(notify.Options{Backoff: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	d.Start(ctx)
	t.Cleanup(func() { cancel(); d.Wait() })
	l.o.Notify = d
	for range 3 {
		cycle(t, l)
	}
	evs := delivered(t, d, hook, "reporting")
	if len(evs) != 1 || evs[0].Event != "drift" || evs[0].Corrected == nil || *evs[0].Corrected ||
		strings.Join(evs[0].Changes, "\n") != "redis.config.maxmemory: 0 -> 64mb\nredis.config.maxmemory-policy: noeviction -> allkeys-lru" {
		t.Errorf("events = %+v, want one uncorrected drift with both differences", evs)
	}
}

// TestLoopNotifiesDriftCorrected: a stack already at its revision whose
// server was changed by hand is put back, and receivers of drift hear
// "drift, corrected" with the change; the first apply is no drift.
func TestLoopNotifiesDriftCorrected(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := rd.Client(t)
	hook, hookSrv := newHookReceiver(t)
	r := newRepo(t)
	r.commit(map[string]string{
		"a.yaml":             redisStack("cache", rd.URL(), "64mb", ""),
		"notifications.yaml": notificationDoc("ops", "webhook", hookSrv.URL, "  events: [drift]\n"),
	})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)
	d := notify.New(notify.Options{Backoff: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	d.Start(ctx)
	t.Cleanup(func() { cancel(); d.Wait() })
	l.o.Notify = d
	cycle(t, l)
	c.ConfigSet(context.Background(), "maxmemory", "1mb")
	cycle(t, l)
	if got := testsrv.ConfigGet(t, c, "maxmemory"); got != "67108864" {
		t.Fatalf("drift not put back: maxmemory=%s", got)
	}
	eventually(t, "the drift event", func() bool { return len(hook.got()) >= 1 })
	cycle(t, l) // in sync: nothing more
	evs := hook.got()
	if len(evs) != 1 || evs[0].Event != "drift" || evs[0].Corrected == nil || !*evs[0].Corrected ||
		strings.Join(evs[0].Changes, "\n") != "redis.config.maxmemory: 1048576 -> 64mb" {
		t.Errorf("events = %+v, want one corrected drift of maxmemory", evs)
	}
}
