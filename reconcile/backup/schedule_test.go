package backup

import (
	"strings"
	"testing"
	"time"
)

func mustSchedule(t *testing.T, expr, tz string) Schedule {
	t.Helper()
	s, err := ParseSchedule(expr, tz)
	if err != nil {
		t.Fatalf("ParseSchedule(%q, %q): %v", expr, tz, err)
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

func TestParseSchedule(t *testing.T) {
	for _, expr := range []string{"0 3 * * *", "@daily", "@hourly", "@weekly", "@every 6h", "*/15 * * * *", "0 3 * * MON-FRI", "30 2 1 jan,jul *"} {
		if _, err := ParseSchedule(expr, "Europe/Berlin"); err != nil {
			t.Errorf("%q: %v", expr, err)
		}
	}
	bad := map[string]string{
		"":                      "required",
		"0 3 * *":               "5 fields",
		"0 0 3 * * *":           "5 fields", // the 6-field seconds-first form
		"61 * * * *":            "61",
		"@every 10s":            "shorter than",
		"@sometimes":            "unrecognized descriptor",
		"CRON_TZ=UTC 0 3 * * *": "timezone field",
		"0 0 30 2 *":            "never fires",
	}
	for expr, want := range bad {
		_, err := ParseSchedule(expr, "")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSchedule(%q) = %v, want an error containing %q", expr, err, want)
		}
	}
	if _, err := ParseSchedule("@daily", "Mars/Olympus_Mons"); err == nil || !strings.Contains(err.Error(), "IANA") {
		t.Errorf("unknown zone: %v", err)
	}
}

func TestValidateJob(t *testing.T) {
	good := Job{Stack: "amanat-dev", Name: "pg-nightly", Source: "postgres", Schedule: "0 3 * * *", Timezone: "Europe/Berlin",
		Destination: "/var/backups", Retention: Retention{KeepLast: 3}, Verify: "restore"}
	if errs := ValidateJob(good); len(errs) != 0 {
		t.Fatalf("valid job: %v", errs)
	}
	cases := []struct {
		mutate func(*Job)
		want   string
	}{
		{func(j *Job) { j.Schedule = "0 0 3 * * *" }, "schedule: "},
		{func(j *Job) { j.Timezone = "Europe/Atlantis" }, "timezone: "},
		{func(j *Job) { j.Timezone = "Local" }, "timezone: "},
		{func(j *Job) { j.Retention = Retention{} }, "retention: empty"},
		{func(j *Job) { j.Retention.KeepDaily = -2 }, "retention.keepDaily: "},
		{func(j *Job) { j.Verify = "checksum" }, "verify: "},
		{func(j *Job) { j.Source = "mysql" }, "source: "},
		{func(j *Job) { j.Source = "redis" }, "verify: restore is supported for postgres only"},
		{func(j *Job) { j.Destination = " " }, "destination: "},
		{func(j *Job) { j.Name = "a/b" }, "name: "},
	}
	for _, c := range cases {
		j := good
		c.mutate(&j)
		errs := ValidateJob(j)
		if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), c.want) {
			t.Errorf("got %v, want one error starting %q", errs, c.want)
		}
	}
}

func TestScheduleDST(t *testing.T) {
	cases := []struct {
		name, expr, tz, after string
		want                  []string // successive Next times, UTC
	}{
		{"spring-forward gap fires once at the gap's end", "30 2 * * *", "America/New_York", "2025-03-08T07:30:00Z",
			[]string{"2025-03-09T07:00:00Z", "2025-03-10T06:30:00Z"}},
		{"fall-back repeated time fires once", "30 1 * * *", "America/New_York", "2025-11-01T05:30:00Z",
			[]string{"2025-11-02T05:30:00Z", "2025-11-03T06:30:00Z"}},
		{"wall clock kept across DST", "0 3 * * *", "Europe/Berlin", "2025-03-28T02:00:00Z",
			[]string{"2025-03-29T02:00:00Z", "2025-03-30T01:00:00Z", "2025-03-31T01:00:00Z"}},
		{"hourly over fall-back: the repeated hour once", "0 * * * *", "America/New_York", "2025-11-02T04:00:00Z",
			[]string{"2025-11-02T05:00:00Z", "2025-11-02T07:00:00Z", "2025-11-02T08:00:00Z"}},
		{"hourly over spring-forward", "0 * * * *", "America/New_York", "2025-03-09T06:00:00Z",
			[]string{"2025-03-09T07:00:00Z", "2025-03-09T08:00:00Z"}},
		{"@every counts real time", "@every 6h", "America/New_York", "2025-03-09T04:00:00Z",
			[]string{"2025-03-09T10:00:00Z", "2025-03-09T16:00:00Z"}},
		{"@daily in a zone", "@daily", "Asia/Tokyo", "2025-01-01T00:00:00Z",
			[]string{"2025-01-01T15:00:00Z", "2025-01-02T15:00:00Z"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := mustSchedule(t, c.expr, c.tz)
			at := utc(c.after)
			for _, w := range c.want {
				at = s.Next(at)
				if !at.Equal(utc(w)) {
					t.Fatalf("next = %s (%s), want %s", at.UTC().Format(time.RFC3339), at.In(s.Location()), w)
				}
			}
		})
	}
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
