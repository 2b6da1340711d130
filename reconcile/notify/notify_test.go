package notify

import (
	"bytes"
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

	"github.com/amanat/dbops/spec"
)

// receiver is a local HTTP server standing in for Slack or a webhook
// endpoint: it records every request and answers with codes in turn
// (the last one repeated).
type receiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	reqs  []recorded
	codes []int
	got   chan struct{}
}

type recorded struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, codes ...int) *receiver {
	t.Helper()
	r := &receiver{codes: codes, got: make(chan struct{}, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, recorded{header: req.Header.Clone(), body: body})
		code := http.StatusOK
		if len(r.codes) > 0 {
			code = r.codes[0]
			if len(r.codes) > 1 {
				r.codes = r.codes[1:]
			}
		}
		r.mu.Unlock()
		w.WriteHeader(code)
		r.got <- struct{}{}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

// counts collects Options.Count calls.
type counts struct {
	mu sync.Mutex
	m  map[string]int
	ch chan struct{}
}

// syncBuffer is a log sink read while the dispatcher writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newCounts() *counts { return &counts{m: map[string]int{}, ch: make(chan struct{}, 1000)} }

func (c *counts) add(provider, result string) {
	c.mu.Lock()
	c.m[provider+"/"+result]++
	c.mu.Unlock()
	c.ch <- struct{}{}
}

func (c *counts) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

// waitCounts waits until n deliveries have ended.
func (c *counts) wait(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-c.ch:
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d of %d deliveries ended", i, n)
		}
	}
}

func notification(name, typ, url, secret string, events, stacks []string) spec.Notification {
	if events == nil {
		events = spec.DefaultEvents
	}
	return spec.Notification{Metadata: spec.Metadata{Name: name},
		Spec: spec.NotificationSpec{Type: typ, URL: url, Secret: secret, Events: events, Stacks: stacks}}
}

func start(t *testing.T, o Options, ns ...spec.Notification) *Dispatcher {
	t.Helper()
	if o.Backoff == 0 {
		o.Backoff = time.Millisecond
	}
	d := New(o)
	d.Configure(ns)
	ctx, cancel := context.WithCancel(context.Background())
	d.Start(ctx)
	t.Cleanup(func() { cancel(); d.Wait() })
	return d
}

func TestWebhookPayloadAndSignature(t *testing.T) {
	tests := []struct {
		name, secret string
	}{
		{"signed", "hmac-key-for-tests"},
		{"unsigned", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReceiver(t)
			c := newCounts()
			d := start(t, Options{Count: c.add}, notification("hook", "webhook", r.srv.URL+"/dbops", tt.secret, []string{"applied"}, nil))
			at := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
			d.Publish(Event{Event: "applied", Stack: "shop", Revision: "0123456789abcdef", Summary: "applied 2 change(s)",
				Changes: []string{"redis maxmemory: 100mb -> 200mb", "postgres migration 3"}, Time: at})
			c.wait(t, 1)
			reqs := r.requests()
			if len(reqs) != 1 || c.get("webhook/sent") != 1 {
				t.Fatalf("%d requests, counts %v; want 1 sent", len(reqs), c.m)
			}
			want := `{"version":"dbops.notification/v1","event":"applied","stack":"shop","revision":"0123456789abcdef","summary":"applied 2 change(s)","changes":["redis maxmemory: 100mb -\u003e 200mb","postgres migration 3"],"time":"2026-11-30T08:00:00Z"}`
			if string(reqs[0].body) != want {
				t.Errorf("body:\n%s\nwant:\n%s", reqs[0].body, want)
			}
			if ct := reqs[0].header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			sig := reqs[0].header.Get(SignatureHeader)
			switch {
			case tt.secret == "" && sig != "":
				t.Errorf("unsigned webhook sent %s: %q", SignatureHeader, sig)
			case tt.secret != "" && sig != Sign(tt.secret, reqs[0].body):
				t.Errorf("%s = %q, want %q", SignatureHeader, sig, Sign(tt.secret, reqs[0].body))
			case tt.secret != "" && !strings.HasPrefix(sig, "sha256=") || len(sig) > 0 && len(sig) != len("sha256=")+64:
				t.Errorf("%s = %q, want sha256=<64 hex>", SignatureHeader, sig)
			}
		})
	}
}

// TestSign pins the HMAC to a value computed independently:
// printf '{"a":1}' | openssl dgst -sha256 -hmac key
func TestSign(t *testing.T) {
	if got, want := Sign("key", []byte(`{"a":1}`)), "sha256=88a67f24bbcdaed0e6c997404bb79a743baf44c6bab2f4c27328e3009d22e342"; got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

func TestSlackMessage(t *testing.T) {
	r := newReceiver(t)
	c := newCounts()
	d := start(t, Options{Count: c.add}, notification("ops", "slack", r.srv.URL+"/services/T0/B0/x", "", nil, nil))
	d.Publish(Event{Event: "failed", Stack: "shop", Revision: "0123456789abcdef", Summary: "apply failed",
		Errors: []string{"redis maxmemory: ERR <invalid> & refused"}})
	c.wait(t, 1)
	reqs := r.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	var msg SlackMessage
	if err := json.Unmarshal(reqs[0].body, &msg); err != nil {
		t.Fatal(err)
	}
	want := ":x: *shop* failed: apply failed (revision `0123456789ab`)\n• redis maxmemory: ERR &lt;invalid&gt; &amp; refused"
	if msg.Text != want {
		t.Errorf("text:\n%s\nwant:\n%s", msg.Text, want)
	}
}

// TestFiltering: each receiver gets only the events and stacks it asked
// for; the default is failures of every stack; resolved follows failed.
func TestFiltering(t *testing.T) {
	all := newReceiver(t)
	prodApplied := newReceiver(t)
	c := newCounts()
	d := start(t, Options{Count: c.add},
		notification("failures", "webhook", all.srv.URL, "", nil, nil),
		notification("prod", "webhook", prodApplied.srv.URL, "", []string{"applied", "drift"}, []string{"prod"}))
	for _, ev := range []Event{
		{Event: "applied", Stack: "prod"},         // prod
		{Event: "applied", Stack: "dev"},          // nobody
		{Event: "failed", Stack: "dev"},           // failures
		{Event: "drift", Stack: "prod"},           // prod
		{Event: "drift", Stack: "dev"},            // nobody
		{Event: "rejected", Stack: ""},            // failures
		{Event: "backupFailed", Stack: "prod"},    // failures
		{Event: "backupSucceeded", Stack: "prod"}, // nobody
		{Event: EventResolved, Stack: "dev"},      // failures
	} {
		d.Publish(ev)
	}
	c.wait(t, 6)
	events := func(r *receiver) []string {
		var out []string
		for _, q := range r.requests() {
			var ev Event
			if err := json.Unmarshal(q.body, &ev); err != nil {
				t.Fatal(err)
			}
			out = append(out, ev.Event+"/"+ev.Stack)
		}
		return out
	}
	if got, want := strings.Join(events(all), " "), "failed/dev rejected/ backupFailed/prod resolved/dev"; got != want {
		t.Errorf("default receiver got %s, want %s", got, want)
	}
	if got, want := strings.Join(events(prodApplied), " "), "applied/prod drift/prod"; got != want {
		t.Errorf("prod receiver got %s, want %s", got, want)
	}
}

// TestRetries: 5xx is retried until it succeeds; 4xx is not retried; a
// receiver that keeps failing gets Attempts tries, then an error logged
// without the URL (which holds Slack's secret) or the HMAC key.
func TestRetries(t *testing.T) {
	tests := []struct {
		name     string
		codes    []int
		wantReqs int
		result   string
	}{
		{"500 then 200", []int{500, 502, 200}, 3, "sent"},
		{"404 not retried", []int{404}, 1, "failed"},
		{"429 retried", []int{429, 200}, 2, "sent"},
		{"always 503", []int{503}, 3, "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReceiver(t, tt.codes...)
			c := newCounts()
			var logs syncBuffer
			const secretPath = "/services/T0/B0/very-secret-slack-path"
			const key = "hmac-key-never-logged"
			spec.RegisterSecrets(r.srv.URL + secretPath)
			d := start(t, Options{Count: c.add, Attempts: 3, Logger: slog.New(slog.NewTextHandler(&logs, nil))},
				notification("hook", "webhook", r.srv.URL+secretPath, key, nil, nil))
			d.Publish(Event{Event: "failed", Stack: "shop"})
			c.wait(t, 1)
			if n := len(r.requests()); n != tt.wantReqs {
				t.Errorf("%d requests, want %d", n, tt.wantReqs)
			}
			if c.get("webhook/"+tt.result) != 1 {
				t.Errorf("counts %v, want webhook/%s", c.m, tt.result)
			}
			if tt.result == "failed" && !strings.Contains(logs.String(), "notification not delivered") {
				t.Errorf("failure not logged:\n%s", logs.String())
			}
			for _, s := range []string{"very-secret-slack-path", key} {
				if strings.Contains(logs.String(), s) {
					t.Errorf("log holds a secret %q:\n%s", s, logs.String())
				}
			}
		})
	}
}

// TestReceiverDown: Publish returns at once whatever the receiver does: a
// closed port, and one that never answers, with the queue full.
func TestReceiverDown(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL + "/secret-token-path"
	down.Close() // nothing listens there any more

	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(hang); slow.Close() })

	c := newCounts()
	var logs syncBuffer
	spec.RegisterSecrets(downURL)
	d := start(t, Options{Count: c.add, QueueSize: 2, Attempts: 2, Timeout: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))},
		notification("down", "webhook", downURL, "", nil, nil),
		notification("slow", "slack", slow.URL, "", nil, nil))
	published := make(chan struct{})
	go func() {
		for i := 0; i < 50; i++ {
			d.Publish(Event{Event: "failed", Stack: "shop"})
		}
		close(published)
	}()
	select {
	case <-published:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked on receivers that are down")
	}
	// 100 deliveries asked for: at most queue+1 in flight, the rest dropped.
	dropped := c.get("webhook/dropped") + c.get("slack/dropped")
	if dropped < 90 {
		t.Errorf("%d dropped of 100 with a queue of 2, want at least 90 (counts %v)", dropped, c.m)
	}
	c.wait(t, dropped+1)
	deadline := time.Now().Add(30 * time.Second)
	for c.get("webhook/failed")+c.get("slack/failed") == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c.get("webhook/failed")+c.get("slack/failed") == 0 {
		t.Errorf("no failed delivery counted: %v", c.m)
	}
	c.mu.Lock()
	t.Logf("100 deliveries asked of 2 dead receivers, queue 2: %v", c.m)
	c.mu.Unlock()
	if strings.Contains(logs.String(), "secret-token-path") {
		t.Errorf("log holds the receiver URL:\n%s", logs.String())
	}
}
