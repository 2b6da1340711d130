package notify

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amanat/dbops/spec"
)

// apiRequest is one request a stand-in for the GitHub or GitLab API got.
type apiRequest struct {
	method, uri string
	header      http.Header
	body        map[string]any
}

// statusAPI stands in for the GitHub or GitLab REST API: it records every
// request and answers with codes in turn (the last one repeated; 201 when
// none is given, as both APIs do).
type statusAPI struct {
	srv   *httptest.Server
	mu    sync.Mutex
	reqs  []apiRequest
	codes []int
}

func newStatusAPI(t *testing.T, codes ...int) *statusAPI {
	t.Helper()
	a := &statusAPI{codes: codes}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			body = map[string]any{"undecodable": err.Error()}
		}
		a.mu.Lock()
		a.reqs = append(a.reqs, apiRequest{method: r.Method, uri: r.RequestURI, header: r.Header.Clone(), body: body})
		code := http.StatusCreated
		if len(a.codes) > 0 {
			code = a.codes[0]
			if len(a.codes) > 1 {
				a.codes = a.codes[1:]
			}
		}
		a.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *statusAPI) requests() []apiRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]apiRequest(nil), a.reqs...)
}

func statusReceiver(name, typ, apiURL, repo, token string, stacks ...string) spec.Notification {
	s := spec.NotificationSpec{Type: typ, APIURL: apiURL, Token: token, Events: spec.DefaultEvents, Stacks: stacks, FailureThreshold: 1}
	if typ == spec.NotifyGitHub {
		s.Repository = repo
	} else {
		s.Project = repo
	}
	return spec.Notification{Metadata: spec.Metadata{Name: name}, Spec: s}
}

const sha = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"

// TestCommitStatusRequests asserts the exact requests of both APIs: method,
// path (GitLab's project path URL-encoded), authentication and JSON body.
func TestCommitStatusRequests(t *testing.T) {
	long := strings.Repeat("x", 200)
	tests := []struct {
		name, typ, repo, state, summary string
		wantURI                         string
		wantHeader                      map[string]string
		wantBody                        map[string]any
	}{
		{name: "github pending", typ: "github", repo: "acme/infra", state: StatePending, summary: "applying 2 change(s)",
			wantURI: "/api/v3/repos/acme/infra/statuses/" + sha,
			wantHeader: map[string]string{"Authorization": "Bearer gh-token-0001", "Accept": "application/vnd.github+json",
				"X-GitHub-Api-Version": "2022-11-28", "Content-Type": "application/json"},
			wantBody: map[string]any{"state": "pending", "context": "dbops/shop", "description": "applying 2 change(s)"}},
		{name: "github failure, long description cut at 140", typ: "github", repo: "acme/infra", state: StateFailure, summary: long,
			wantURI:    "/api/v3/repos/acme/infra/statuses/" + sha,
			wantHeader: map[string]string{"Authorization": "Bearer gh-token-0001"},
			wantBody:   map[string]any{"state": "failure", "context": "dbops/shop", "description": strings.Repeat("x", 139) + "…"}},
		{name: "gitlab success, subgroup path encoded", typ: "gitlab", repo: "group/sub/infra", state: StateSuccess, summary: "applied 2 change(s)",
			wantURI:    "/api/v4/projects/group%2Fsub%2Finfra/statuses/" + sha,
			wantHeader: map[string]string{"PRIVATE-TOKEN": "gh-token-0001", "Content-Type": "application/json", "Authorization": ""},
			wantBody:   map[string]any{"state": "success", "name": "dbops/shop", "description": "applied 2 change(s)"}},
		{name: "gitlab failure is failed", typ: "gitlab", repo: "1234", state: StateFailure, summary: "apply failed",
			wantURI:    "/api/v4/projects/1234/statuses/" + sha,
			wantHeader: map[string]string{"PRIVATE-TOKEN": "gh-token-0001"},
			wantBody:   map[string]any{"state": "failed", "name": "dbops/shop", "description": "apply failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newStatusAPI(t)
			c := newCounts()
			base := api.srv.URL + "/api/v3"
			if tt.typ == "gitlab" {
				base = api.srv.URL + "/api/v4"
			}
			d := start(t, Options{Count: c.add}, statusReceiver("status", tt.typ, base, tt.repo, "gh-token-0001"))
			d.Publish(Event{Event: EventCommitStatus, CommitState: tt.state, Stack: "shop", Revision: sha, Summary: tt.summary})
			c.wait(t, 1)
			reqs := api.requests()
			if len(reqs) != 1 || c.get(tt.typ+"/sent") != 1 {
				t.Fatalf("%d requests, counts %v; want 1 sent", len(reqs), c.m)
			}
			q := reqs[0]
			if q.method != http.MethodPost || q.uri != tt.wantURI {
				t.Errorf("request %s %s, want POST %s", q.method, q.uri, tt.wantURI)
			}
			for k, v := range tt.wantHeader {
				if got := q.header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if len(q.body) != len(tt.wantBody) {
				t.Errorf("body %v, want exactly %v", q.body, tt.wantBody)
			}
			for k, v := range tt.wantBody {
				if q.body[k] != v {
					t.Errorf("body %s = %v, want %v", k, q.body[k], v)
				}
			}
		})
	}
}

// TestCommitStatusDelivery: a 500 is retried until the status lands, a 4xx
// is not, an API that is down is counted failed and logged without the
// token, and a folder revision (not a commit) sends nothing.
func TestCommitStatusDelivery(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	tests := []struct {
		name     string
		codes    []int
		down     bool
		revision string
		wantReqs int
		result   string
	}{
		{name: "500 then 200", codes: []int{500, 200}, revision: sha, wantReqs: 2, result: "sent"},
		{name: "401 not retried", codes: []int{401}, revision: sha, wantReqs: 1, result: "failed"},
		{name: "API down", down: true, revision: sha, result: "failed"},
		// dbops run --dir: no commit to put a status on; not a failure
		{name: "folder revision", revision: "sha256:" + strings.Repeat("a", 64), result: "skipped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newStatusAPI(t, tt.codes...)
			base := api.srv.URL
			if tt.down {
				base = downURL
			}
			c := newCounts()
			var logs syncBuffer
			const token = "status-token-never-logged"
			spec.RegisterSecrets(token)
			d := start(t, Options{Count: c.add, Attempts: 3, Timeout: 2 * time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))},
				statusReceiver("status", "github", base, "acme/infra", token))
			d.Publish(Event{Event: EventCommitStatus, CommitState: StateSuccess, Stack: "shop", Revision: tt.revision, Summary: "applied"})
			c.wait(t, 1)
			if n := len(api.requests()); n != tt.wantReqs {
				t.Errorf("%d requests, want %d", n, tt.wantReqs)
			}
			if c.get("github/"+tt.result) != 1 {
				t.Errorf("counts %v, want github/%s", c.m, tt.result)
			}
			if strings.Contains(logs.String(), token) {
				t.Errorf("log holds the token:\n%s", logs.String())
			}
			if tt.result == "failed" && !strings.Contains(logs.String(), "notification not delivered") {
				t.Errorf("failure not logged:\n%s", logs.String())
			}
			if tt.result == "skipped" {
				// a second event: counted again, but warned about once
				d.Publish(Event{Event: EventCommitStatus, CommitState: StateSuccess, Stack: "shop", Revision: tt.revision, Summary: "applied"})
				c.wait(t, 1)
				if n := strings.Count(logs.String(), "commit statuses are not posted"); n != 1 || c.get("github/skipped") != 2 || strings.Contains(logs.String(), "not delivered") {
					t.Errorf("%d warnings (want 1), counts %v (want 2 skipped, no failure):\n%s", n, c.m, logs.String())
				}
			}
		})
	}
}

// TestRouting: commit statuses go to github/gitlab receivers of the stack
// only, and those receivers hear nothing else; a failure reaches a
// receiver when the run of failures reaches its threshold, or a new
// revision fails past it, and "resolved" only follows a reported failure.
func TestRouting(t *testing.T) {
	hook := notification("hook", "webhook", "", "", []string{"failed", "applied"}, nil)
	third := notification("third", "webhook", "", "", []string{"failed"}, nil)
	third.Spec.FailureThreshold = 3
	gh := statusReceiver("gh", "github", "", "a/b", "t", "shop")
	tests := []struct {
		name string
		n    spec.Notification
		ev   Event
		want bool
	}{
		{"status to github", gh, Event{Event: EventCommitStatus, Stack: "shop"}, true},
		{"status of another stack", gh, Event{Event: EventCommitStatus, Stack: "dev"}, false},
		{"applied not to github", gh, Event{Event: "applied", Stack: "shop"}, false},
		{"failed not to github", gh, Event{Event: "failed", Stack: "shop"}, false},
		{"status not to a webhook", hook, Event{Event: EventCommitStatus, Stack: "shop"}, false},
		{"first failure, threshold 1", hook, Event{Event: "failed", Consecutive: 1, First: true}, true},
		{"retry failing the same way, threshold 1", hook, Event{Event: "failed", Consecutive: 2}, false},
		{"another revision failing", hook, Event{Event: "failed", Consecutive: 4, First: true}, true},
		{"no count: every failure told", hook, Event{Event: "failed"}, true},
		{"first failure, threshold 3", third, Event{Event: "failed", Consecutive: 1, First: true}, false},
		{"second failure, threshold 3", third, Event{Event: "failed", Consecutive: 2}, false},
		{"third failure, threshold 3", third, Event{Event: "failed", Consecutive: 3}, true},
		{"fourth failure, threshold 3", third, Event{Event: "failed", Consecutive: 4}, false},
		{"new revision at 2, threshold 3", third, Event{Event: "failed", Consecutive: 2, First: true}, false},
		{"resolved after 2, threshold 3", third, Event{Event: EventResolved, Consecutive: 2}, false},
		{"resolved after 3, threshold 3", third, Event{Event: EventResolved, Consecutive: 3}, true},
	}
	for _, tt := range tests {
		want := tt.ev.Event
		if want == EventResolved {
			want = spec.EventFailed
		}
		if got := (target{n: tt.n}).wants(want, tt.ev); got != tt.want {
			t.Errorf("%s: wants = %v, want %v", tt.name, got, tt.want)
		}
	}
}
