package backup

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// daily returns one counted backup a day at 03:00 UTC from..to, IDs "2006-01-02".
func daily(from, to string) []Backup {
	var bs []Backup
	end := utc(to + "T03:00:00Z")
	for d := utc(from + "T03:00:00Z"); !d.After(end); d = d.AddDate(0, 0, 1) {
		bs = append(bs, backupAt(d.Format("2006-01-02"), d))
	}
	return bs
}

func backupAt(id string, t time.Time) Backup {
	return Backup{ID: id, Counted: true, Manifest: Manifest{StartedAt: t, FinishedAt: t.Add(time.Minute),
		Verification: Verification{Method: VerifyRead, OK: true}}}
}

func ids(bs []Backup) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.ID
	}
	slices.Sort(out)
	return out
}

func uncount(bs []Backup, reason string, which ...string) {
	for i := range bs {
		if slices.Contains(which, bs[i].ID) {
			bs[i].Counted, bs[i].Reason = false, reason
			bs[i].Manifest.Verification.OK = false
		}
	}
}

func TestPruneYearOfDailyBackups(t *testing.T) {
	cases := []struct {
		name   string
		policy Retention
		prep   func([]Backup)
		keep   []string
		drop   []string // when keep is nil: everything but these is kept
	}{
		{name: "issue policy: last 3, daily 7, weekly 4 (ISO week over new year), monthly 6",
			policy: Retention{KeepLast: 3, KeepDaily: 7, KeepWeekly: 4, KeepMonthly: 6},
			keep: []string{"2024-07-31", "2024-08-31", "2024-09-30", "2024-10-31", "2024-11-30", "2024-12-15", "2024-12-22",
				"2024-12-25", "2024-12-26", "2024-12-27", "2024-12-28", "2024-12-29", "2024-12-30", "2024-12-31"}},
		{name: "keepLast 1", policy: Retention{KeepLast: 1}, keep: []string{"2024-12-31"}},
		{name: "yearly beyond the history keeps the one year's newest", policy: Retention{KeepYearly: 5}, keep: []string{"2024-12-31"}},
		{name: "monthly unlimited", policy: Retention{KeepMonthly: -1},
			keep: []string{"2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31", "2024-06-30", "2024-07-31",
				"2024-08-31", "2024-09-30", "2024-10-31", "2024-11-30", "2024-12-31"}},
		{name: "weekly: Monday starts a week", policy: Retention{KeepWeekly: 3},
			prep: func(bs []Backup) { // only Sun Dec 22, Mon Dec 23 and Sun Dec 29 are verified
				var others []string
				for _, b := range bs {
					if b.ID != "2024-12-22" && b.ID != "2024-12-23" && b.ID != "2024-12-29" {
						others = append(others, b.ID)
					}
				}
				uncount(bs, "verification failed", others...)
			},
			drop: []string{"2024-12-23"}}, // same ISO week as Sun Dec 29; Sun Dec 22 is the week before
		{name: "unverified backups are kept and not counted",
			policy: Retention{KeepLast: 3},
			prep:   func(bs []Backup) { uncount(bs, "verification failed: x", "2024-12-31", "2024-12-30") },
			keep:   []string{"2024-12-27", "2024-12-28", "2024-12-29", "2024-12-30", "2024-12-31"}},
		{name: "newest verified is kept when the last ten days failed",
			policy: Retention{KeepDaily: 2},
			prep: func(bs []Backup) {
				uncount(bs, "verification failed", "2024-12-22", "2024-12-23", "2024-12-24", "2024-12-25", "2024-12-26",
					"2024-12-27", "2024-12-28", "2024-12-29", "2024-12-30", "2024-12-31")
			},
			keep: []string{"2024-12-20", "2024-12-21", "2024-12-22", "2024-12-23", "2024-12-24", "2024-12-25", "2024-12-26",
				"2024-12-27", "2024-12-28", "2024-12-29", "2024-12-30", "2024-12-31"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bs := daily("2024-01-01", "2024-12-31")
			if c.prep != nil {
				c.prep(bs)
			}
			keep, remove := Prune(bs, c.policy, time.UTC)
			if len(keep)+len(remove) != len(bs) {
				t.Fatalf("keep %d + remove %d != %d backups", len(keep), len(remove), len(bs))
			}
			for _, r := range remove {
				if !r.Counted {
					t.Fatalf("an uncounted backup would be deleted: %s", r.ID)
				}
			}
			want := c.keep
			if want == nil {
				for _, id := range ids(bs) {
					if !slices.Contains(c.drop, id) {
						want = append(want, id)
					}
				}
			}
			if got := ids(keep); !slices.Equal(got, want) {
				t.Fatalf("kept but not wanted: %v\nwanted but not kept: %v", minus(got, want), minus(want, got))
			}
		})
	}
}

func TestPruneKeptByAndNewest(t *testing.T) {
	bs := daily("2024-01-01", "2024-03-31")
	keep, _ := Prune(bs, Retention{KeepLast: 2, KeepMonthly: 2}, time.UTC)
	if keep[0].ID != "2024-03-31" || strings.Join(keep[0].KeptBy, ",") != "last,monthly" {
		t.Fatalf("newest first with its rules, got %s %v", keep[0].ID, keep[0].KeptBy)
	}
	// An empty policy deletes nothing.
	if keep, remove := Prune(bs, Retention{}, time.UTC); len(remove) != 0 || len(keep) != len(bs) {
		t.Fatalf("empty policy removed %d", len(remove))
	}
	// Whatever the policy, the newest counted backup stays.
	for _, p := range []Retention{{KeepHourly: 1}, {KeepYearly: 1}, {KeepWeekly: 1}, {KeepLast: 1}} {
		keep, _ := Prune(bs, p, time.UTC)
		if !slices.ContainsFunc(keep, func(b Backup) bool { return b.ID == "2024-03-31" }) {
			t.Fatalf("policy %+v deleted the newest backup", p)
		}
	}
}

func TestPruneOrdersByManifestTime(t *testing.T) {
	// File names sort the other way round from the manifests' times.
	bs := []Backup{
		backupAt("z-oldest", utc("2024-05-01T03:00:00Z")),
		backupAt("a-newest", utc("2024-05-03T03:00:00Z")),
		backupAt("m-middle", utc("2024-05-02T03:00:00Z")),
	}
	keep, remove := Prune(bs, Retention{KeepLast: 1}, time.UTC)
	if len(keep) != 1 || keep[0].ID != "a-newest" || len(remove) != 2 {
		t.Fatalf("keep %v remove %v", ids(keep), ids(remove))
	}
}

func TestPruneCalendarInJobZone(t *testing.T) {
	// 14:00 and 16:00 UTC are one day in UTC, two days in Tokyo (23:00, 01:00).
	bs := []Backup{
		backupAt("a", utc("2024-06-01T14:00:00Z")),
		backupAt("b", utc("2024-06-01T16:00:00Z")),
		backupAt("c", utc("2024-05-31T16:00:00Z")),
	}
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	if keep, _ := Prune(bs, Retention{KeepDaily: 2}, time.UTC); !slices.Equal(ids(keep), []string{"b", "c"}) {
		t.Errorf("UTC days: kept %v", ids(keep))
	}
	if keep, _ := Prune(bs, Retention{KeepDaily: 2}, tokyo); !slices.Equal(ids(keep), []string{"a", "b"}) {
		t.Errorf("Tokyo days: kept %v", ids(keep))
	}
	// Periods are those that have a backup, not the last n calendar days.
	gaps := []Backup{backupAt("d1", utc("2024-01-01T03:00:00Z")), backupAt("d2", utc("2024-01-02T03:00:00Z")), backupAt("d10", utc("2024-01-10T03:00:00Z"))}
	if keep, _ := Prune(gaps, Retention{KeepDaily: 3}, time.UTC); len(keep) != 3 {
		t.Errorf("daily 3 over days with gaps kept %v", ids(keep))
	}
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
