package loop

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amanat/dbops/internal/testsrv"
)

// cycles is how many cycles the loop ran for stack (each one plans it):
// the count of its reconcile duration histogram.
func cycles(t *testing.T, l *Loop, stack string) int {
	t.Helper()
	re := regexp.MustCompile(`(?m)^dbops_reconcile_duration_seconds_count\{stack="` + regexp.QuoteMeta(stack) + `"\} (\d+)$`)
	m := re.FindStringSubmatch(scrape(t, l))
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func readyOf(l *Loop, stack string) Condition {
	if s, ok := stateOf(l, stack); ok && len(s.Conditions) > 0 {
		return s.Conditions[0]
	}
	return Condition{}
}

// runLoop runs l until the test ends. Its interval is an hour: cycles
// come from backoff retries, or from the test calling Cycle.
func runLoop(t *testing.T, l *Loop) context.Context {
	t.Helper()
	l.o.Interval = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return ctx
}

// TestPermanentErrorStalls: a revision the servers contradict is Stalled,
// not retried by backoff or by the interval, and is tried again when a new
// revision is in force. lastAppliedRevision stays at the last revision that
// applied. Nothing of the stalled revision is applied (its maxmemory).
func TestPermanentErrorStalls(t *testing.T) {
	migrations := map[string]string{
		"migrations/00001_a.sql": "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n",
		"migrations/00002_b.sql": "-- +goose Up\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE b;\n",
	}
	tests := []struct {
		name string
		// stack is the stack file: extra spec lines and Redis extra config
		stack func(url, pgURL, maxmemory string, bad bool) string
		want  string
	}{
		{name: "redis parameter the server does not know",
			stack: func(url, _, maxmemory string, bad bool) string {
				s := redisStack("cache", url, maxmemory, "")
				if bad {
					s += "      no-such-param: \"1\"\n"
				}
				return s
			},
			want: "does not know parameter no-such-param"},
		{name: "migration target below the live version without allowDown",
			stack: func(url, pgURL, maxmemory string, bad bool) string {
				target := "2"
				if bad {
					target = "1"
				}
				return redisStack("cache", url, maxmemory, "  postgres:\n    url: "+pgURL+"\n    migrations: {dir: ./migrations, target: "+target+"}\n")
			},
			want: "target 1 is below the live version 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
			pgURL := testsrv.PostgresDB(t)
			c := rd.Client(t)
			r := newRepo(t)
			files := map[string]string{"cache.yaml": tt.stack(rd.URL(), pgURL, "64mb", false)}
			for k, v := range migrations {
				files[k] = v
			}
			good := r.commit(files)
			var logs testsrv.Buffer
			l := newLoop(t, r.source(t), &logs)
			ctx := runLoop(t, l)
			eventually(t, "first revision applied", func() bool { return readyOf(l, "cache").Reason == ReasonSucceeded })

			stalledSince := time.Now()
			bad := r.commit(map[string]string{"cache.yaml": tt.stack(rd.URL(), pgURL, "96mb", true)})
			l.Cycle(ctx)
			eventually(t, "stack Stalled", func() bool { return readyOf(l, "cache").Reason == ReasonStalled })
			before := cycles(t, l, "cache")
			// Long enough for several backoff steps (RetryBase 50ms,
			// RetryMax 200ms), and the interval's cycles too.
			for range 5 {
				time.Sleep(200 * time.Millisecond)
				l.Cycle(ctx)
			}
			l.Wait()
			if n := cycles(t, l, "cache"); n != before {
				t.Errorf("a stalled stack was planned %d more time(s) on the same revision", n-before)
			}
			s, _ := stateOf(l, "cache")
			if cond := readyOf(l, "cache"); cond.Status != "False" || !strings.Contains(cond.Message, tt.want) {
				t.Errorf("Ready = %+v, want False with %q", cond, tt.want)
			}
			if s.RetryAt != nil {
				t.Errorf("stalled stack has a backoff retry at %v", s.RetryAt)
			}
			if s.LastAttemptedRevision != bad || s.LastAppliedRevision != good {
				t.Errorf("revisions attempted %q applied %q, want %q and %q", s.LastAttemptedRevision, s.LastAppliedRevision, bad, good)
			}
			if got := testsrv.ConfigGet(t, c, "maxmemory"); got != "67108864" {
				t.Errorf("a stalled revision changed maxmemory to %s", got)
			}
			if n := strings.Count(logs.String(), "stack stalled"); n != 1 {
				t.Errorf("%d \"stack stalled\" log lines, want 1", n)
			}
			if s.LastSuccess.After(stalledSince) {
				t.Errorf("a stalled cycle counted as a success at %v", s.LastSuccess)
			}
			if m := scrape(t, l); !strings.Contains(m, `dbops_reconcile_failures_total{stack="cache"} 1`) {
				t.Errorf("a stalled revision is not counted as one failure:\n%s", grep(m, "failures_total"))
			}

			// A new revision is tried again, even one that still fails.
			still := r.commit(map[string]string{"cache.yaml": "# still wrong\n" + tt.stack(rd.URL(), pgURL, "96mb", true)})
			l.Cycle(ctx)
			eventually(t, "new revision attempted", func() bool {
				s, _ := stateOf(l, "cache")
				return s.LastAttemptedRevision == still
			})
			if n := cycles(t, l, "cache"); n != before+1 {
				t.Errorf("%d cycles after a new revision, want %d", n, before+1)
			}

			fixed := r.commit(map[string]string{"cache.yaml": tt.stack(rd.URL(), pgURL, "96mb", false)})
			l.Cycle(ctx)
			eventually(t, "fixed revision applied", func() bool { return readyOf(l, "cache").Reason == ReasonSucceeded })
			if s, _ := stateOf(l, "cache"); s.LastAttemptedRevision != fixed || s.LastAppliedRevision != fixed {
				t.Errorf("revisions attempted %q applied %q, want both %q", s.LastAttemptedRevision, s.LastAppliedRevision, fixed)
			}
			if got := testsrv.ConfigGet(t, c, "maxmemory"); got != "100663296" {
				t.Errorf("fixed revision not applied: maxmemory=%s", got)
			}
		})
	}
}

// TestTransientErrorRetried: a Redis server that stops is retried with
// backoff (the interval is an hour) and the stack recovers once the server
// is back, without a new revision.
func TestTransientErrorRetried(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{}) // no config file: settings are lost on restart
	c := rd.Client(t)
	r := newRepo(t)
	rev := r.commit(map[string]string{"cache.yaml": redisStack("cache", rd.URL(), "64mb", "")})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)
	ctx := runLoop(t, l)
	eventually(t, "first apply", func() bool { return readyOf(l, "cache").Reason == ReasonSucceeded })

	c.Do(ctx, "SHUTDOWN", "NOSAVE")
	if err := rd.WaitExit(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	l.Cycle(ctx)
	eventually(t, "stack failing", func() bool { return readyOf(l, "cache").Reason == ReasonPlanFailed })
	failing := cycles(t, l, "cache")
	// retried by backoff alone: no Cycle call, no new revision
	eventually(t, "backoff retries", func() bool { return cycles(t, l, "cache") >= failing+2 })
	s, _ := stateOf(l, "cache")
	if s.RetryAt == nil {
		t.Errorf("failing stack has no retry time: %+v", s)
	}
	if s.LastAttemptedRevision != rev || s.LastAppliedRevision != rev {
		t.Errorf("revisions attempted %q applied %q, want both %q", s.LastAttemptedRevision, s.LastAppliedRevision, rev)
	}

	if err := rd.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "recovered after the restart", func() bool {
		return readyOf(l, "cache").Reason == ReasonSucceeded && testsrv.ConfigGet(t, c, "maxmemory") == "67108864"
	})
	if strings.Contains(logs.String(), "stack stalled") {
		t.Error("an unreachable server stalled the stack")
	}
}
