package backup

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is a parsed job schedule in its time zone.
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

// MinEvery is the shortest @every interval accepted.
const MinEvery = time.Minute

// ParseSchedule parses a standard 5-field cron expression or a descriptor
// (@yearly, @monthly, @weekly, @daily, @hourly, @every 6h) in the IANA zone
// tz ("" is UTC).
func ParseSchedule(expr, tz string) (Schedule, error) {
	loc, err := loadLocation(tz)
	if err != nil {
		return Schedule{}, err
	}
	e := strings.TrimSpace(expr)
	if e == "" {
		return Schedule{}, errors.New("required: a 5-field cron expression or @daily, @hourly, @every 6h...")
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
		ref := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
		if c.Next(ref).IsZero() {
			return Schedule{}, fmt.Errorf("%q never fires", expr)
		}
	}
	return s, nil
}

func loadLocation(tz string) (*time.Location, error) {
	if tz == "" || tz == "UTC" {
		return time.UTC, nil
	}
	if tz == "Local" {
		return nil, errors.New(`"Local" is not allowed: name an IANA zone such as Europe/Berlin`)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("%q is not a known IANA time zone", tz)
	}
	return loc, nil
}

// String returns the expression as written.
func (s Schedule) String() string { return s.expr }

// Location returns the schedule's time zone.
func (s Schedule) Location() *time.Location {
	if s.loc == nil {
		return time.UTC
	}
	return s.loc
}

// Next returns the first scheduled time strictly after t; zero when the
// schedule is empty or never fires again.
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
			return r
		}
		w = nw // a repeated wall time whose first occurrence is past
	}
	return time.Time{}
}

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

// Due reports whether a job whose previous run started at last is due at
// now, and the scheduled time that makes it due (in the past when overdue)
// or, when not due, its next scheduled time. However many scheduled times
// passed since last (downtime, suspension), a job is due once: after it
// runs, pass the new start time as last. A job that never ran (zero last)
// is due at once.
func Due(s Schedule, last, now time.Time) (due bool, next time.Time) {
	if last.IsZero() {
		return true, now
	}
	next = s.Next(last)
	if next.IsZero() {
		return false, next
	}
	return !now.Before(next), next
}

// JobState is what a Scheduler knows about one job.
type JobState struct {
	Last    time.Time `json:"last"`    // reference: start of the last run or skipped slot
	Next    time.Time `json:"next"`    // next scheduled time after Last
	Running bool      `json:"running"` // a run started by Tick has not called Done
	Runs    int       `json:"runs"`    // runs started by Tick
	Skipped int       `json:"skipped"` // firings skipped because a run was still going
}

// Scheduler decides, for the run loop, when each job (by key, e.g.
// "stack/job") starts. It is safe for concurrent use; it never sleeps and
// takes the time from its callers.
type Scheduler struct {
	mu   sync.Mutex
	jobs map[string]*JobState
}

// NewScheduler returns an empty Scheduler.
func NewScheduler() *Scheduler { return &Scheduler{jobs: map[string]*JobState{}} }

func (s *Scheduler) job(key string) *JobState {
	j := s.jobs[key]
	if j == nil {
		j = &JobState{}
		s.jobs[key] = j
	}
	return j
}

// Seed sets a job's reference time: the start of its newest backup
// attempt (LastStarted). An unseeded job (no backup at all) is due at
// once. A later Seed never moves the reference backwards.
func (s *Scheduler) Seed(key string, last time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j := s.job(key); last.After(j.Last) {
		j.Last = last
	}
}

// Tick reports whether the job should start now; if so it is marked
// running until Done. A job that falls due while its previous run is still
// going is skipped for that slot and the skip counted.
func (s *Scheduler) Tick(key string, sched Schedule, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.job(key)
	due, next := Due(sched, j.Last, now)
	j.Next = next
	if !due {
		return false
	}
	j.Last, j.Next = now, sched.Next(now)
	if j.Running {
		j.Skipped++
		return false
	}
	j.Running = true
	j.Runs++
	return true
}

// Done marks the job's run finished.
func (s *Scheduler) Done(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.job(key).Running = false
}

// State returns a copy of the job's state.
func (s *Scheduler) State(key string) JobState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.job(key)
}
