package risk

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // IANA zones even on hosts without /usr/share/zoneinfo

	"github.com/robfig/cron/v3"
)

// Window is a maintenance window as the spec declares it.
type Window struct {
	Start    string        // 5-field cron expression (or @daily, @weekly, ...), in Timezone
	Duration time.Duration // elapsed time from each start; > 0
	Timezone string        // IANA name; "" means UTC
}

// Windows are parsed maintenance windows. The zero value has no windows: it
// is never open and has no next opening.
type Windows struct{ list []window }

type window struct {
	sched cron.Schedule
	dur   time.Duration
	loc   *time.Location
}

// probe is a fixed reference time from which ParseWindows checks that a
// schedule fires at all (robfig's Next looks 5 years ahead; Feb 29 of 2000
// and 2004 are within reach).
var probe = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// ParseWindows checks and parses windows. Errors name the index and the
// field, e.g. "[1].start: ...", and all of them are returned (errors.Join).
func ParseWindows(ws []Window) (Windows, error) {
	var out Windows
	var errs []error
	for i, w := range ws {
		bad := func(field, format string, args ...any) {
			errs = append(errs, fmt.Errorf("[%d].%s: %s", i, field, fmt.Sprintf(format, args...)))
		}
		p := window{dur: w.Duration, loc: time.UTC}
		ok := true
		spec := strings.TrimSpace(w.Start)
		switch {
		case spec == "":
			bad("start", "required: a 5-field cron expression such as \"0 2 * * 6\"")
			ok = false
		case strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ="):
			bad("start", "%q: set the zone with timezone, not in the cron expression", w.Start)
			ok = false
		case strings.HasPrefix(spec, "@every"):
			bad("start", "%q: @every is not a calendar schedule; use a cron expression", w.Start)
			ok = false
		default:
			s, err := cron.ParseStandard(spec)
			if err != nil {
				bad("start", "%q: %v", w.Start, err)
				ok = false
			} else if s.Next(probe).IsZero() {
				bad("start", "%q never fires", w.Start)
				ok = false
			}
			p.sched = s
		}
		if w.Duration <= 0 {
			bad("duration", "must be > 0, got %s", w.Duration)
			ok = false
		}
		switch tz := strings.TrimSpace(w.Timezone); tz {
		case "", "UTC":
		case "Local":
			bad("timezone", "%q depends on the host; name an IANA zone such as Europe/Berlin", w.Timezone)
			ok = false
		default:
			loc, err := time.LoadLocation(tz)
			if err != nil {
				bad("timezone", "%v", err)
				ok = false
			}
			p.loc = loc
		}
		if ok {
			out.list = append(out.list, p)
		}
	}
	if len(errs) > 0 {
		return Windows{}, errors.Join(errs...)
	}
	return out, nil
}

// Len is the number of windows.
func (w Windows) Len() int { return len(w.list) }

// maxChain bounds the merging of overlapping or back-to-back occurrences, so
// that a window that never closes (e.g. every minute for an hour) ends the
// scan instead of looping.
const maxChain = 10000

// Open reports whether now is inside a window. If so, until is when it
// closes (occurrences that overlap or touch are merged), and next is zero.
// Otherwise next is the next opening (zero when there are no windows).
//
// A window is open from each cron start, in its zone, for Duration of
// elapsed time: [start, start+Duration). Wall-clock starts follow the zone's
// DST rules; a start falling in the hour skipped by a spring-forward change
// does not happen that day (robfig/cron's behaviour). Times are returned in
// the zone of the window they come from.
func (w Windows) Open(now time.Time) (open bool, until time.Time, next time.Time) {
	for _, win := range w.list {
		// The earliest start after now-dur; if it is not after now, the
		// window opened within the last dur and is still open.
		s := win.sched.Next(now.Add(-win.dur).In(win.loc))
		if !s.IsZero() && !s.After(now) && (!open || s.Add(win.dur).After(until)) {
			open, until = true, s.Add(win.dur)
		}
	}
	if open {
		return true, w.extend(until), time.Time{}
	}
	for _, win := range w.list {
		s := win.sched.Next(now.In(win.loc))
		if !s.IsZero() && (next.IsZero() || s.Before(next)) {
			next = s
		}
	}
	return false, time.Time{}, next
}

// extend pushes until past every occurrence starting at or before it.
func (w Windows) extend(until time.Time) time.Time {
	for range maxChain {
		moved := false
		for _, win := range w.list {
			// Starts in (until-dur, until] end after until.
			s := win.sched.Next(until.Add(-win.dur).In(win.loc))
			if !s.IsZero() && !s.After(until) && s.Add(win.dur).After(until) {
				until, moved = s.Add(win.dur), true
			}
		}
		if !moved {
			break
		}
	}
	return until
}
