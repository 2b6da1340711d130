package spec

import (
	"strings"
	"time"
)

// Window is a recurring maintenance window: it opens at each Start, in
// Timezone, and stays open for Duration of elapsed time. Load parses Start
// (a calendar schedule, never @every) and Duration.
type Window struct {
	Start    Schedule `json:"start"`              // 5-field cron or descriptor: when the window opens
	Duration Duration `json:"duration"`           // how long it stays open, e.g. 2h
	Timezone string   `json:"timezone,omitempty"` // IANA zone of Start; UTC when empty
}

// ParseWindow parses a window's fields. A window must open on the
// calendar: "@every 1h" has no fixed start and is refused.
func ParseWindow(start, duration, tz string) (Window, []FieldError) {
	var errs []FieldError
	w := Window{Timezone: tz}
	var err error
	if _, lerr := ParseLocation(tz); lerr != nil {
		errs = append(errs, FieldError{Field: "timezone", Msg: lerr.Error()})
		tz = "" // still check start
	}
	if strings.TrimSpace(start) == "" {
		errs = append(errs, FieldError{Field: "start", Msg: "required: a 5-field cron expression such as \"0 2 * * 6\", or @daily, @weekly"})
	} else if w.Start, err = ParseSchedule(start, tz); err != nil {
		errs = append(errs, FieldError{Field: "start", Msg: err.Error()})
	} else if !w.Start.Calendar() {
		errs = append(errs, FieldError{Field: "start", Msg: start + ": @every has no fixed start; a window opens at calendar times: use a cron expression such as \"0 2 * * 6\" or @daily"})
	}
	if w.Duration, err = ParseDuration(duration); err != nil {
		errs = append(errs, FieldError{Field: "duration", Msg: err.Error()})
	}
	return w, errs
}

// Windows are the parsed maintenance windows of a stack. None is never
// open and has no next opening.
type Windows []Window

// maxChain bounds the merging of overlapping or back-to-back occurrences, so
// that a window that never closes (e.g. every minute for two) ends the
// scan instead of looping.
const maxChain = 10000

// Open reports whether now is inside a window. If so, until is when it
// closes (occurrences that overlap or touch are merged), and next is zero.
// Otherwise next is the next opening (zero when there are no windows).
//
// A window is open from each start for Duration of elapsed time:
// [start, start+Duration). Starts follow the zone's wall clock as Schedule
// does: a start in an hour skipped by a spring-forward change happens at
// the end of the gap. Times are returned in the zone of their window.
func (ws Windows) Open(now time.Time) (open bool, until time.Time, next time.Time) {
	for _, w := range ws {
		// The earliest start after now-dur; if it is not after now, the
		// window opened within the last dur and is still open.
		d := w.Duration.Value()
		s := w.Start.Next(now.Add(-d))
		if !s.IsZero() && !s.After(now) && (!open || s.Add(d).After(until)) {
			open, until = true, s.Add(d)
		}
	}
	if open {
		return true, ws.extend(until), time.Time{}
	}
	for _, w := range ws {
		if s := w.NextStart(now); !s.IsZero() && (next.IsZero() || s.Before(next)) {
			next = s
		}
	}
	return false, time.Time{}, next
}

// NextStart is the first opening of the window strictly after t.
func (w Window) NextStart(t time.Time) time.Time { return w.Start.Next(t) }

// extend pushes until past every occurrence starting at or before it.
func (ws Windows) extend(until time.Time) time.Time {
	for range maxChain {
		moved := false
		for _, w := range ws {
			// Starts in (until-dur, until] end after until.
			d := w.Duration.Value()
			s := w.Start.Next(until.Add(-d))
			if !s.IsZero() && !s.After(until) && s.Add(d).After(until) {
				until, moved = s.Add(d), true
			}
		}
		if !moved {
			break
		}
	}
	return until
}
