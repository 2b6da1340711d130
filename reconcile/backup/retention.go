package backup

import (
	"time"
)

// bucket is one retention rule: n periods (-1: all), keyed by bucketOf.
type bucket struct {
	name string
	n    int
	key  func(t time.Time, i int) int
	last int
}

// Prune applies the retention policy to backups with restic's forget
// semantics and returns what to keep and what to delete, each newest first;
// every backup given is in exactly one of them.
//
//   - Only counted (verified) backups take part; the others are always
//     kept (failed ones stay for inspection) and are never deleted here.
//   - Backups are ordered by manifest time, newest first. keepLast keeps
//     the n newest; each bucket rule (hourly, daily, weekly, monthly,
//     yearly) walks them newest first and keeps the newest backup of each
//     period that has one, until it has kept n. A backup is kept when any
//     rule keeps it. Periods are calendar periods in loc; weeks are ISO
//     weeks, Monday to Sunday.
//   - The newest counted backup is never deleted. An empty policy deletes
//     nothing.
func Prune(backups []Backup, r Retention, loc *time.Location) (keep, remove []Backup) {
	if loc == nil {
		loc = time.UTC
	}
	bs := slicesClone(backups)
	sortNewestFirst(bs)
	buckets := []*bucket{
		{name: "last", n: r.KeepLast, key: func(_ time.Time, i int) int { return i }},
		{name: "hourly", n: r.KeepHourly, key: func(t time.Time, _ int) int {
			return t.Year()*1000000 + int(t.Month())*10000 + t.Day()*100 + t.Hour()
		}},
		{name: "daily", n: r.KeepDaily, key: func(t time.Time, _ int) int { return t.Year()*10000 + int(t.Month())*100 + t.Day() }},
		{name: "weekly", n: r.KeepWeekly, key: func(t time.Time, _ int) int { y, w := t.ISOWeek(); return y*100 + w }},
		{name: "monthly", n: r.KeepMonthly, key: func(t time.Time, _ int) int { return t.Year()*100 + int(t.Month()) }},
		{name: "yearly", n: r.KeepYearly, key: func(t time.Time, _ int) int { return t.Year() }},
	}
	for _, b := range buckets {
		b.last = -1
	}
	nr := 0 // index among counted backups
	for _, b := range bs {
		if !b.Counted {
			keep = append(keep, b)
			continue
		}
		b.KeptBy = nil
		t := b.Time().In(loc)
		for _, bk := range buckets {
			if bk.n == 0 {
				continue
			}
			if k := bk.key(t, nr); k != bk.last {
				bk.last = k
				b.KeptBy = append(b.KeptBy, bk.name)
				if bk.n > 0 {
					bk.n--
				}
			}
		}
		switch {
		case emptyRetention(r):
			b.KeptBy = []string{"no policy"}
		case nr == 0 && len(b.KeptBy) == 0:
			b.KeptBy = []string{"newest"}
		}
		nr++
		if len(b.KeptBy) > 0 {
			keep = append(keep, b)
		} else {
			remove = append(remove, b)
		}
	}
	return keep, remove
}

func slicesClone(bs []Backup) []Backup { return append([]Backup(nil), bs...) }
