package loop

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile/notify"
)

// TestLoopSchemaDrift: dbops run checks a stack's schema drift when it first
// sees it and then once per drift.interval, not on every cycle; /status and
// dbops_schema_drift_objects show the last check; receivers of schemaDrift
// hear of a change of state only: drift found, then cleared.
func TestLoopSchemaDrift(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	hook, hookSrv := newHookReceiver(t)
	r := newRepo(t)
	r.commit(map[string]string{
		"migrations/00001_t.sql": "-- +goose Up\nCREATE TABLE t (id int PRIMARY KEY, email text);\n-- +goose Down\nDROP TABLE t;\n",
		"stack.yaml": "apiVersion: dbops/v1\nkind: Stack\nmetadata:\n  name: shop\nspec:\n  postgres:\n    url: " + pgURL +
			"\n    migrations: {dir: ./migrations}\n    drift: {interval: 1h}\n",
		"notifications.yaml": notificationDoc("ops", "webhook", hookSrv.URL, "  events: [schemaDrift]\n"),
	})
	var logs testsrv.Buffer
	l := newLoop(t, r.source(t), &logs)
	d := notify.New(notify.Options{Backoff: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	d.Start(ctx)
	t.Cleanup(func() { cancel(); d.Wait() })
	l.o.Notify = d
	db := testsrv.OpenDB(t, pgURL)

	cycle(t, l) // applies the migration; the first check runs beside it
	// The first check may have raced the apply (the level moved: retried
	// later), so check once more at a time when it is due either way.
	start := time.Now().Add(2 * time.Hour)
	check := func(at time.Time) SchemaDriftStatus {
		t.Helper()
		l.mu.Lock()
		cur := l.current
		l.mu.Unlock()
		l.schemaDriftChecks(context.Background(), cur, at)
		l.Wait()
		s, ok := stateOf(l, "shop")
		if !ok || s.SchemaDrift == nil {
			t.Fatalf("no schema drift status: %+v", s)
		}
		return *s.SchemaDrift
	}
	gauge := func() float64 {
		t.Helper()
		mfs, err := l.o.Metrics.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "dbops_schema_drift_objects" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == "shop" {
					return m.GetGauge().GetValue()
				}
			}
		}
		return -1
	}

	s := check(start)
	if s.Error != "" || s.Items != 0 || !s.CheckedAt.Equal(start) || !s.NextCheck.Equal(start.Add(time.Hour)) || s.Level != "1" {
		t.Fatalf("check after apply: %+v", s)
	}
	if _, err := db.Exec("CREATE INDEX t_email_idx ON t (email)"); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		at      time.Duration // after start
		sql     string        // run before the step
		checked bool          // a check ran (due)
		items   int
	}{
		{"cycles before the interval do not check", 30 * time.Minute, "", false, 0},
		{"due: drift found", 61 * time.Minute, "", true, 1},
		{"same drift: no new event", 122 * time.Minute, "", true, 1},
		{"reverted: cleared", 183 * time.Minute, "DROP INDEX t_email_idx", true, 0},
	}
	for _, st := range steps {
		if st.sql != "" {
			if _, err := db.Exec(st.sql); err != nil {
				t.Fatal(err)
			}
		}
		before := s.CheckedAt
		cycle(t, l) // a real cycle now: never checks, the last check is recent
		s = check(start.Add(st.at))
		if ran := !s.CheckedAt.Equal(before); ran != st.checked || s.Items != st.items || s.Error != "" {
			t.Errorf("%s: ran %v, status %+v; want ran %v, %d items", st.name, ran, s, st.checked, st.items)
		}
		if g := gauge(); g != float64(s.Items) {
			t.Errorf("%s: dbops_schema_drift_objects = %v, want %d", st.name, g, s.Items)
		}
	}
	eventually(t, "two schemaDrift events", func() bool { return len(hook.got()) >= 2 })
	var got []string
	for _, ev := range hook.got() {
		got = append(got, ev.Event+": "+strings.Join(ev.Changes, ",")+" / "+strings.SplitN(ev.Summary, ";", 2)[0])
	}
	want := []string{
		"schemaDrift: index t_email_idx exists live, not in migrations / 1 schema object(s) differ from the applied migrations (level 1)",
		"schemaDrift:  / schema drift cleared: the live schema matches the migrations again (level 1)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
