package spec

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

// wutc reads the window tests' "2006-01-02 15:04:05" UTC times.
func wutc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t
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

// win is a window as the tests write it.
type win struct {
	start string
	dur   time.Duration
	tz    string
}

func mustWindows(t *testing.T, ws ...win) Windows {
	t.Helper()
	var out Windows
	for _, w := range ws {
		p, errs := ParseWindow(w.start, w.dur.String(), w.tz)
		if len(errs) > 0 {
			t.Fatalf("ParseWindow(%+v): %v", w, errs)
		}
		out = append(out, p)
	}
	return out
}

func TestWindowsOpen(t *testing.T) {
	nightly := win{"0 22 * * *", 3 * time.Hour, ""} // UTC, crosses midnight
	berlin1 := win{"0 1 * * *", 2 * time.Hour, "Europe/Berlin"}
	berlin22 := win{"0 22 * * *", time.Hour, "Europe/Berlin"}
	skipped := win{"30 2 * * *", time.Hour, "Europe/Berlin"}
	saturday := win{"0 2 * * 6", 4 * time.Hour, "America/New_York"}
	tests := []struct {
		name      string
		ws        []win
		now       string // UTC
		open      bool
		until     string // UTC, when open
		next      string // UTC, when closed
		nowInZone string // optional zone for now
	}{
		{name: "at start", ws: []win{nightly}, now: "2025-06-10 22:00:00", open: true, until: "2025-06-11 01:00:00"},
		{name: "mid window", ws: []win{nightly}, now: "2025-06-10 23:30:00", open: true, until: "2025-06-11 01:00:00"},
		{name: "after midnight", ws: []win{nightly}, now: "2025-06-11 00:59:59", open: true, until: "2025-06-11 01:00:00"},
		{name: "at end is closed", ws: []win{nightly}, now: "2025-06-11 01:00:00", next: "2025-06-11 22:00:00"},
		{name: "just before start", ws: []win{nightly}, now: "2025-06-10 21:59:59", next: "2025-06-10 22:00:00"},
		{name: "now in another zone", ws: []win{nightly}, now: "2025-06-10 23:30:00", nowInZone: "Asia/Tokyo", open: true, until: "2025-06-11 01:00:00"},
		{name: "weekly in New York", ws: []win{saturday}, now: "2025-06-11 12:00:00", next: "2025-06-14 06:00:00"}, // 02:00 EDT
		{name: "weekly open", ws: []win{saturday}, now: "2025-06-14 09:59:00", open: true, until: "2025-06-14 10:00:00"},
		// Europe/Berlin on 2025-03-30: 02:00 CET becomes 03:00 CEST.
		{name: "DST: start in CET, duration is elapsed time", ws: []win{berlin1}, now: "2025-03-30 01:30:00", open: true, until: "2025-03-30 02:00:00"}, // 01:00 CET .. 04:00 CEST
		{name: "DST: closed after", ws: []win{berlin1}, now: "2025-03-30 02:00:00", next: "2025-03-30 23:00:00"},                                        // 01:00 CEST on the 31st
		{name: "DST: start before the change", ws: []win{berlin22}, now: "2025-03-29 12:00:00", next: "2025-03-29 21:00:00"},                            // 22:00 CET
		{name: "DST: start after the change", ws: []win{berlin22}, now: "2025-03-30 12:00:00", next: "2025-03-30 20:00:00"},                             // 22:00 CEST
		{name: "DST: start in the skipped hour opens at the gap's end", ws: []win{skipped}, now: "2025-03-30 00:00:00", next: "2025-03-30 01:00:00"},    // 03:00 CEST
		{name: "DST: autumn", ws: []win{berlin22}, now: "2025-10-26 12:00:00", next: "2025-10-26 21:00:00"},                                             // 22:00 CET
		{name: "earliest of two", ws: []win{saturday, nightly}, now: "2025-06-11 12:00:00", next: "2025-06-11 22:00:00"},
		{name: "overlapping windows merge", ws: []win{nightly, {"0 0 * * *", 2 * time.Hour, ""}}, now: "2025-06-10 23:00:00", open: true, until: "2025-06-11 02:00:00"},
		{name: "back-to-back windows merge", ws: []win{nightly, {"0 1 * * *", 30 * time.Minute, ""}}, now: "2025-06-10 23:00:00", open: true, until: "2025-06-11 01:30:00"},
		{name: "later of two open", ws: []win{{"0 0 * * *", 2 * time.Hour, ""}, {"30 0 * * *", 3 * time.Hour, ""}}, now: "2025-06-10 01:00:00", open: true, until: "2025-06-10 03:30:00"},
		{name: "descriptor", ws: []win{{"@daily", time.Hour, ""}}, now: "2025-06-10 00:10:00", open: true, until: "2025-06-10 01:00:00"},
		{name: "no windows", now: "2025-06-10 00:10:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := mustWindows(t, tt.ws...)
			now := wutc(tt.now)
			if tt.nowInZone != "" {
				loc, _ := time.LoadLocation(tt.nowInZone)
				now = now.In(loc)
			}
			open, until, next := w.Open(now)
			if open != tt.open {
				t.Fatalf("open = %v (until %v, next %v), want %v", open, until, next, tt.open)
			}
			if want := parseOrZero(tt.until); !until.Equal(want) {
				t.Errorf("until = %v, want %v", until.UTC(), want)
			}
			if want := parseOrZero(tt.next); !next.Equal(want) {
				t.Errorf("next = %v, want %v", next.UTC(), want)
			}
		})
	}
}

func parseOrZero(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	return wutc(s)
}

func TestWindowsInZone(t *testing.T) {
	w := mustWindows(t, win{"0 22 * * *", time.Hour, "Europe/Berlin"})
	_, _, next := w.Open(wutc("2025-06-10 12:00:00"))
	if got := next.Format("2006-01-02 15:04 MST"); got != "2025-06-10 22:00 CEST" {
		t.Errorf("next = %s, want it in the window's zone", got)
	}
}

// TestWindowsAlwaysOpen checks that a window whose occurrences always
// overlap ends the merge instead of looping.
func TestWindowsAlwaysOpen(t *testing.T) {
	w := mustWindows(t, win{"* * * * *", 2 * time.Minute, ""})
	now := wutc("2025-06-10 12:00:30")
	open, until, _ := w.Open(now)
	if !open || until.Before(now.Add(24*time.Hour)) {
		t.Errorf("open = %v until %v", open, until)
	}
}

func TestParseWindowErrors(t *testing.T) {
	tests := []struct {
		start, dur, tz string
		want           []string // field: message fragment
	}{
		{"0 25 * * *", "1h", "", []string{"start: \"0 25 * * *\": "}},
		{"0 0 2 * * 6", "1h", "", []string{"start: \"0 0 2 * * 6\": expected exactly 5 fields"}},
		{"", "1h", "", []string{"start: required: a 5-field cron expression"}},
		{"@every 1h", "1h", "", []string{"start: @every 1h: @every has no fixed start"}},
		{"CRON_TZ=Europe/Berlin 0 2 * * *", "1h", "", []string{"start: \"CRON_TZ=Europe/Berlin 0 2 * * *\": set the time zone in the timezone field"}},
		{"0 0 30 2 *", "1h", "", []string{"start: \"0 0 30 2 *\" never fires"}},
		{"0 2 * * *", "", "", []string{"duration: \"\" is not a positive duration"}},
		{"0 2 * * *", "0s", "", []string{"duration: \"0s\" is not a positive duration"}},
		{"0 2 * * *", "-1m", "", []string{"duration: \"-1m\" is not a positive duration"}},
		{"0 2 * * *", "1h", "Mars/Olympus", []string{"timezone: \"Mars/Olympus\" is not a known IANA time zone"}},
		{"0 2 * * *", "1h", "Local", []string{"timezone: \"Local\" depends on the host"}},
		{"bad", "x", "Nowhere", []string{"start: ", "duration: ", "timezone: "}},
	}
	for _, tt := range tests {
		t.Run(tt.start+"/"+tt.dur+"/"+tt.tz, func(t *testing.T) {
			_, errs := ParseWindow(tt.start, tt.dur, tt.tz)
			var all []string
			for _, e := range errs {
				all = append(all, e.Field+": "+e.Msg)
			}
			got := strings.Join(all, "\n")
			if len(errs) != len(tt.want) {
				t.Errorf("got %d errors, want %d:\n%s", len(errs), len(tt.want), got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("errors lack %q:\n%s", w, got)
				}
			}
		})
	}
	if _, errs := ParseWindow("@weekly", "90m", "UTC"); len(errs) != 0 {
		t.Errorf("a valid window: %v", errs)
	}
}
