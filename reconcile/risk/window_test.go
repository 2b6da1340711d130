package risk

import (
	"strings"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t
}

func mustWindows(t *testing.T, ws ...Window) Windows {
	t.Helper()
	p, err := ParseWindows(ws)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWindowsOpen(t *testing.T) {
	nightly := Window{Start: "0 22 * * *", Duration: 3 * time.Hour} // UTC, crosses midnight
	berlin1 := Window{Start: "0 1 * * *", Duration: 2 * time.Hour, Timezone: "Europe/Berlin"}
	berlin22 := Window{Start: "0 22 * * *", Duration: time.Hour, Timezone: "Europe/Berlin"}
	skipped := Window{Start: "30 2 * * *", Duration: time.Hour, Timezone: "Europe/Berlin"}
	saturday := Window{Start: "0 2 * * 6", Duration: 4 * time.Hour, Timezone: "America/New_York"}
	tests := []struct {
		name      string
		ws        []Window
		now       string // UTC
		open      bool
		until     string // UTC, when open
		next      string // UTC, when closed
		nowInZone string // optional zone for now
	}{
		{name: "at start", ws: []Window{nightly}, now: "2025-06-10 22:00:00", open: true, until: "2025-06-11 01:00:00"},
		{name: "mid window", ws: []Window{nightly}, now: "2025-06-10 23:30:00", open: true, until: "2025-06-11 01:00:00"},
		{name: "after midnight", ws: []Window{nightly}, now: "2025-06-11 00:59:59", open: true, until: "2025-06-11 01:00:00"},
		{name: "at end is closed", ws: []Window{nightly}, now: "2025-06-11 01:00:00", next: "2025-06-11 22:00:00"},
		{name: "just before start", ws: []Window{nightly}, now: "2025-06-10 21:59:59", next: "2025-06-10 22:00:00"},
		{name: "now in another zone", ws: []Window{nightly}, now: "2025-06-10 23:30:00", nowInZone: "Asia/Tokyo", open: true, until: "2025-06-11 01:00:00"},
		{name: "weekly in New York", ws: []Window{saturday}, now: "2025-06-11 12:00:00", next: "2025-06-14 06:00:00"}, // 02:00 EDT
		{name: "weekly open", ws: []Window{saturday}, now: "2025-06-14 09:59:00", open: true, until: "2025-06-14 10:00:00"},
		// Europe/Berlin on 2025-03-30: 02:00 CET becomes 03:00 CEST.
		{name: "DST: start in CET, duration is elapsed time", ws: []Window{berlin1}, now: "2025-03-30 01:30:00", open: true, until: "2025-03-30 02:00:00"}, // 01:00 CET .. 04:00 CEST
		{name: "DST: closed after", ws: []Window{berlin1}, now: "2025-03-30 02:00:00", next: "2025-03-30 23:00:00"},                                        // 01:00 CEST on the 31st
		{name: "DST: start before the change", ws: []Window{berlin22}, now: "2025-03-29 12:00:00", next: "2025-03-29 21:00:00"},                            // 22:00 CET
		{name: "DST: start after the change", ws: []Window{berlin22}, now: "2025-03-30 12:00:00", next: "2025-03-30 20:00:00"},                             // 22:00 CEST
		{name: "DST: start in the skipped hour", ws: []Window{skipped}, now: "2025-03-30 00:00:00", next: "2025-03-31 00:30:00"},                           // 02:30 CEST on the 31st
		{name: "DST: autumn", ws: []Window{berlin22}, now: "2025-10-26 12:00:00", next: "2025-10-26 21:00:00"},                                             // 22:00 CET
		{name: "earliest of two", ws: []Window{saturday, nightly}, now: "2025-06-11 12:00:00", next: "2025-06-11 22:00:00"},
		{name: "overlapping windows merge", ws: []Window{nightly, {Start: "0 0 * * *", Duration: 2 * time.Hour}}, now: "2025-06-10 23:00:00", open: true, until: "2025-06-11 02:00:00"},
		{name: "back-to-back windows merge", ws: []Window{nightly, {Start: "0 1 * * *", Duration: 30 * time.Minute}}, now: "2025-06-10 23:00:00", open: true, until: "2025-06-11 01:30:00"},
		{name: "later of two open", ws: []Window{{Start: "0 0 * * *", Duration: 2 * time.Hour}, {Start: "30 0 * * *", Duration: 3 * time.Hour}}, now: "2025-06-10 01:00:00", open: true, until: "2025-06-10 03:30:00"},
		{name: "descriptor", ws: []Window{{Start: "@daily", Duration: time.Hour}}, now: "2025-06-10 00:10:00", open: true, until: "2025-06-10 01:00:00"},
		{name: "no windows", now: "2025-06-10 00:10:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := mustWindows(t, tt.ws...)
			now := utc(tt.now)
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
	return utc(s)
}

func TestWindowsInZone(t *testing.T) {
	w := mustWindows(t, Window{Start: "0 22 * * *", Duration: time.Hour, Timezone: "Europe/Berlin"})
	_, _, next := w.Open(utc("2025-06-10 12:00:00"))
	if got := next.Format("2006-01-02 15:04 MST"); got != "2025-06-10 22:00 CEST" {
		t.Errorf("next = %s, want it in the window's zone", got)
	}
}

// TestWindowsAlwaysOpen checks that a window whose occurrences always
// overlap ends the merge instead of looping.
func TestWindowsAlwaysOpen(t *testing.T) {
	w := mustWindows(t, Window{Start: "* * * * *", Duration: 2 * time.Minute})
	now := utc("2025-06-10 12:00:30")
	open, until, _ := w.Open(now)
	if !open || until.Before(now.Add(24*time.Hour)) {
		t.Errorf("open = %v until %v", open, until)
	}
}

func TestParseWindowsErrors(t *testing.T) {
	ok := Window{Start: "0 2 * * 6", Duration: time.Hour, Timezone: "Europe/Berlin"}
	tests := []struct {
		name string
		ws   []Window
		want []string
	}{
		{"invalid cron", []Window{ok, {Start: "0 25 * * *", Duration: time.Hour}}, []string{"[1].start: \"0 25 * * *\": "}},
		{"six fields", []Window{{Start: "0 0 2 * * 6", Duration: time.Hour}}, []string{"[0].start: "}},
		{"missing start", []Window{{Duration: time.Hour}}, []string{"[0].start: required"}},
		{"every", []Window{{Start: "@every 1h", Duration: time.Hour}}, []string{"[0].start: \"@every 1h\": @every is not a calendar schedule"}},
		{"zone in cron", []Window{{Start: "CRON_TZ=Europe/Berlin 0 2 * * *", Duration: time.Hour}}, []string{"[0].start: ", "set the zone with timezone"}},
		{"never fires", []Window{{Start: "0 0 30 2 *", Duration: time.Hour}}, []string{"[0].start: \"0 0 30 2 *\" never fires"}},
		{"zero duration", []Window{{Start: "0 2 * * *"}}, []string{"[0].duration: must be > 0"}},
		{"negative duration", []Window{ok, ok, {Start: "0 2 * * *", Duration: -time.Minute}}, []string{"[2].duration: must be > 0, got -1m0s"}},
		{"unknown zone", []Window{{Start: "0 2 * * *", Duration: time.Hour, Timezone: "Mars/Olympus"}}, []string{"[0].timezone: unknown time zone Mars/Olympus"}},
		{"local zone", []Window{{Start: "0 2 * * *", Duration: time.Hour, Timezone: "Local"}}, []string{"[0].timezone: \"Local\" depends on the host"}},
		{"all errors", []Window{{Start: "bad", Timezone: "Nowhere"}}, []string{"[0].start: ", "[0].duration: ", "[0].timezone: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := ParseWindows(tt.ws)
			if err == nil {
				t.Fatalf("no error")
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if w.Len() != 0 {
				t.Errorf("windows returned with an error")
			}
		})
	}
	if w, err := ParseWindows([]Window{ok, {Start: "@weekly", Duration: time.Hour, Timezone: "UTC"}}); err != nil || w.Len() != 2 {
		t.Errorf("valid windows: %v, %d", err, w.Len())
	}
}
