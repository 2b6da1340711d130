package backup

import (
	"context"
	"time"
)

// Key names a job in schedulers, metrics and messages: "stack/job".
func (j Job) Key() string { return j.Stack + "/" + j.Name }

// Status is what plan shows for one job, observed read-only.
type Status struct {
	Job         string    `json:"job"`            // stack/job
	Last        *Backup   `json:"last,omitempty"` // newest counted backup
	LastAttempt time.Time `json:"lastAttempt"`    // newest manifest's start, counted or not
	Due         bool      `json:"due"`
	Next        time.Time `json:"next"` // the slot that makes it due, or the next one
	// Delete lists what retention would delete now, newest first.
	Delete []Backup `json:"delete,omitempty"`
	// Uncounted lists backups kept but not counted (failed verification,
	// no manifest, damaged...): never deleted automatically.
	Uncounted []Backup `json:"uncounted,omitempty"`
}

// Observe lists a job's backups (re-hashing them, see ListChecked) and
// returns its status at now. It writes nothing.
func Observe(ctx context.Context, job Job, now time.Time) (Status, error) {
	bs, err := ListChecked(ctx, job.Destination, job)
	if err != nil {
		return Status{}, err
	}
	st := Status{Job: job.Key(), LastAttempt: LastStarted(bs)}
	if b, ok := Newest(bs); ok {
		st.Last = &b
	}
	st.Due, st.Next = Due(job.Schedule, st.LastAttempt, now)
	_, st.Delete = Prune(bs, job.Retention, job.Location())
	for _, b := range bs {
		if !b.Counted {
			st.Uncounted = append(st.Uncounted, b)
		}
	}
	return st, nil
}
