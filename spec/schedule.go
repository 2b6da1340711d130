package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // every IANA zone, even in slim images

	"github.com/robfig/cron/v3"
)

// MinEvery is the shortest "@every" interval a backup schedule accepts: a
// backup that fires more often than each minute would never finish before
// the next is due.
const MinEvery = time.Minute

// Schedule is a parsed cron schedule in its time zone. Load parses every
// schedule of a stack; a Schedule decoded from JSON but not yet parsed has
// no times (Next returns zero).
//
// Cron expressions are evaluated on the wall clock of the zone, following
// the IANA database: a time that a spring-forward transition skips fires
// once, at the end of the gap (like Vixie cron); a time that a fall-back
// transition repeats fires once, at its first occurrence. "@every D" counts
// real elapsed time from the previous run instead.
type Schedule struct {
	expr  string
	loc   *time.Location
	spec  cron.Schedule // cron: evaluated on a UTC stand-in of the wall clock
	every time.Duration // @every
}

// probe is a fixed reference time from which ParseSchedule checks that an
// expression fires at all (robfig's Next looks 5 years ahead; Feb 29 of
// 2000 and 2004 are within reach).
var probe = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// ParseSchedule parses a standard 5-field cron expression or a descriptor
// (@yearly, @monthly, @weekly, @daily, @hourly, @every 6h) in the IANA zone
// tz ("" is UTC).
func ParseSchedule(expr, tz string) (Schedule, error) {
	loc, err := ParseLocation(tz)
	if err != nil {
		return Schedule{}, err
	}
	e := strings.TrimSpace(expr)
	if e == "" {
		return Schedule{}, errors.New("required: a 5-field cron expression, or a descriptor such as @daily or @every 6h")
	}
	if strings.HasPrefix(e, "TZ=") || strings.HasPrefix(e, "CRON_TZ=") {
		return Schedule{}, fmt.Errorf("%q: set the time zone in the timezone field, not in the expression", expr)
	}
	sc, err := cron.ParseStandard(e)
	if err != nil {
		return Schedule{}, fmt.Errorf("%q: %v (expected 5 fields: minute hour day-of-month month day-of-week, or @daily, @hourly, @every 6h)", expr, err)
	}
	s := Schedule{expr: e, loc: loc, spec: sc}
	switch c := sc.(type) {
	case cron.ConstantDelaySchedule:
		if c.Delay < MinEvery {
			return Schedule{}, fmt.Errorf("%q: interval %v is shorter than %v", expr, c.Delay, MinEvery)
		}
		s.every = c.Delay
	case *cron.SpecSchedule:
		c.Location = time.UTC
		if c.Next(probe).IsZero() {
			return Schedule{}, fmt.Errorf("%q never fires", expr)
		}
	}
	return s, nil
}

// ParseLocation loads an IANA zone; "" is UTC. "Local" is refused: it
// would depend on the host dbops runs on.
func ParseLocation(tz string) (*time.Location, error) {
	switch tz {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return nil, errors.New(`"Local" depends on the host: name an IANA zone such as Europe/Berlin`)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("%q is not a known IANA time zone (e.g. Europe/Berlin)", tz)
	}
	return loc, nil
}

// String returns the expression as written.
func (s Schedule) String() string { return s.expr }

// Calendar reports whether the schedule follows the calendar (a cron
// expression or a descriptor other than @every).
func (s Schedule) Calendar() bool { return s.spec != nil && s.every == 0 }

// Location returns the schedule's time zone.
func (s Schedule) Location() *time.Location {
	if s.loc == nil {
		return time.UTC
	}
	return s.loc
}

// Next returns the first scheduled time strictly after t; zero when the
// schedule is not parsed or never fires again.
func (s Schedule) Next(t time.Time) time.Time {
	if s.spec == nil {
		return time.Time{}
	}
	if s.every > 0 {
		return s.spec.Next(t)
	}
	loc := s.Location()
	w := wall(t.In(loc))
	for range 10 {
		nw := s.spec.Next(w)
		if nw.IsZero() {
			return time.Time{}
		}
		if r := fromWall(nw, loc); r.After(t) {
			return r.In(loc)
		}
		w = nw // a repeated wall time whose first occurrence is past
	}
	return time.Time{}
}

// UnmarshalJSON keeps the expression; Load parses it with its time zone.
func (s *Schedule) UnmarshalJSON(b []byte) error {
	var e string
	if err := json.Unmarshal(b, &e); err != nil {
		return errors.New("must be a string")
	}
	*s = Schedule{expr: e}
	return nil
}

// MarshalJSON writes the expression.
func (s Schedule) MarshalJSON() ([]byte, error) { return json.Marshal(s.expr) }

// wall returns t's wall clock in its zone as a UTC time.
func wall(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
}

// fromWall maps a wall time in loc to an instant: the first occurrence of
// a repeated time, the end of the gap for a skipped one.
func fromWall(w time.Time, loc *time.Location) time.Time {
	c := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), 0, loc)
	if cw := wall(c); !cw.Equal(w) { // skipped by a spring-forward gap
		start, end := c.ZoneBounds()
		if cw.After(w) {
			return start
		}
		return end
	}
	// Repeated: is there an earlier instant with the same wall clock?
	start, _ := c.ZoneBounds()
	if !start.IsZero() {
		_, offC := c.Zone()
		_, offPrev := start.Add(-time.Nanosecond).Zone()
		if offPrev > offC {
			if alt := c.Add(time.Duration(offC-offPrev) * time.Second); alt.Before(start) && wall(alt.In(loc)).Equal(w) {
				return alt
			}
		}
	}
	return c
}

// Duration is a positive length of time written like 2h or 90m; Load
// parses it.
type Duration struct {
	text string
	d    time.Duration
}

// ParseDuration parses a positive Go duration (2h, 90m, 1h30m).
func ParseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return Duration{}, fmt.Errorf("%q is not a positive duration such as 2h, 90m or 1h30m", s)
	}
	return Duration{text: s, d: d}, nil
}

// Value is the parsed duration; zero when not parsed.
func (d Duration) Value() time.Duration { return d.d }

// String returns the duration as written.
func (d Duration) String() string { return d.text }

// UnmarshalJSON keeps the text; Load parses it.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("must be a string such as 2h or 90m")
	}
	*d = Duration{text: s}
	return nil
}

// MarshalJSON writes the duration as written.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.text) }
