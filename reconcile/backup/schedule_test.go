package backup

import (
	"strings"
	"testing"
	"time"

	"github.com/amanat/dbops/spec"
)

func mustSchedule(t *testing.T, expr, tz string) Schedule {
	t.Helper()
	s, err := spec.ParseSchedule(expr, tz)
	if err != nil {
		t.Fatalf("spec.ParseSchedule(%q, %q): %v", expr, tz, err)
	}
	return s
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestDueCatchUpOnce(t *testing.T) {
	s := mustSchedule(t, "0 3 * * *", "UTC")
	last := utc("2025-01-01T03:00:00Z")
	due, next := Due(s, last, utc("2025-01-01T20:00:00Z"))
	if due || !next.Equal(utc("2025-01-02T03:00:00Z")) {
		t.Fatalf("before the slot: due=%v next=%s", due, next)
	}
	// Down for 19 days: one catch-up, then the regular slots.
	sch := NewScheduler()
	sch.Seed("s/j", last)
	var runs []string
	for now := utc("2025-01-20T10:00:00Z"); now.Before(utc("2025-01-22T04:00:00Z")); now = now.Add(time.Minute) {
		if sch.Tick("s/j", s, now) {
			runs = append(runs, now.Format(time.RFC3339))
			sch.Done("s/j")
		}
	}
	want := []string{"2025-01-20T10:00:00Z", "2025-01-21T03:00:00Z", "2025-01-22T03:00:00Z"}
	if strings.Join(runs, " ") != strings.Join(want, " ") {
		t.Fatalf("runs after downtime = %v, want %v", runs, want)
	}
}

func TestDueDSTGapCatchUp(t *testing.T) {
	s := mustSchedule(t, "30 2 * * *", "America/New_York")
	due, next := Due(s, utc("2025-03-08T07:30:00Z"), utc("2025-03-09T12:00:00Z"))
	if !due || !next.Equal(utc("2025-03-09T07:00:00Z")) {
		t.Fatalf("due=%v next=%s, want due at the end of the gap", due, next)
	}
}

func TestUnsuspend(t *testing.T) {
	s := mustSchedule(t, "0 3 * * *", "UTC")
	last := utc("2025-01-01T03:00:00Z")
	// Suspended 12:00 to 20:00: no slot missed, so no run at un-suspension.
	sch := NewScheduler()
	sch.Seed("j", last)
	if sch.Tick("j", s, utc("2025-01-01T20:00:00Z")) {
		t.Fatal("un-suspended job fired although it is not overdue")
	}
	if got := sch.State("j").Next; !got.Equal(utc("2025-01-02T03:00:00Z")) {
		t.Fatalf("next = %s", got)
	}
	// Suspended over two slots: overdue, one run at once, then the schedule.
	sch = NewScheduler()
	sch.Seed("j", last)
	if !sch.Tick("j", s, utc("2025-01-03T10:00:00Z")) {
		t.Fatal("overdue un-suspended job did not fire")
	}
	sch.Done("j")
	if sch.Tick("j", s, utc("2025-01-03T10:01:00Z")) {
		t.Fatal("fired twice")
	}
	// A job that never had a backup fires at once, then on schedule.
	sch = NewScheduler()
	if !sch.Tick("new", s, utc("2025-01-05T10:00:00Z")) {
		t.Fatal("a job without any backup did not fire")
	}
	sch.Done("new")
	if sch.Tick("new", s, utc("2025-01-05T10:01:00Z")) || !sch.Tick("new", s, utc("2025-01-06T03:00:00Z")) {
		t.Fatal("after its first run the job does not follow its schedule")
	}
}

func TestSchedulerSkipsWhileRunning(t *testing.T) {
	s := mustSchedule(t, "0 * * * *", "UTC")
	sch := NewScheduler()
	sch.Seed("j", utc("2025-01-01T09:00:00Z"))
	starts := 0
	for now := utc("2025-01-01T10:00:00Z"); !now.After(utc("2025-01-01T13:00:00Z")); now = now.Add(time.Minute) {
		if now.Equal(utc("2025-01-01T12:30:00Z")) {
			sch.Done("j") // the 10:00 run took 2.5 hours
		}
		if sch.Tick("j", s, now) {
			starts++
			if now.Hour() == 13 {
				sch.Done("j")
			}
		}
		if now.Equal(utc("2025-01-01T12:45:00Z")) && sch.State("j").Running {
			t.Fatal("a skipped slot was caught up when the long run ended")
		}
	}
	st := sch.State("j")
	if starts != 2 || st.Runs != 2 || st.Skipped != 2 {
		t.Fatalf("starts=%d state=%+v, want 2 runs (10:00, 13:00) and 2 skipped (11:00, 12:00)", starts, st)
	}
}
