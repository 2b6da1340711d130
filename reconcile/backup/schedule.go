package backup

import (
	"sync"
	"time"

	"github.com/amanat/dbops/spec"
)

// Schedule is a job's parsed schedule (spec parses it at load).
type Schedule = spec.Schedule

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
