package loop

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/amanat/dbops/reconcile/backup"
	"github.com/amanat/dbops/reconcile/lock"
	"github.com/amanat/dbops/reconcile/notify"
	"github.com/amanat/dbops/spec"
)

// BackupStatus is one backup job in /status.
type BackupStatus struct {
	Job     string        `json:"job"`
	Next    time.Time     `json:"next,omitzero"`
	Running bool          `json:"running"`
	Skipped int           `json:"skipped"` // firings skipped while the previous run was going
	Last    *BackupResult `json:"last,omitempty"`
	// Drill is the job's last restore drill, with its recovery time.
	Drill *backup.DrillReport `json:"drill,omitempty"`
}

// BackupResult is the outcome of a job's last run.
type BackupResult struct {
	At       time.Time `json:"at"`
	OK       bool      `json:"ok"`
	File     string    `json:"file,omitempty"`
	Size     int64     `json:"size,omitempty"`
	Duration string    `json:"duration"`
	// DurationSeconds is Duration as a number.
	DurationSeconds float64 `json:"durationSeconds"`
	Pruned          int     `json:"pruned"`
	Error           string  `json:"error,omitempty"`
}

// backups fires the backup jobs of the revision in force that are due.
// They run beside the stack cycles, so a long dump never holds up drift
// correction; a job still running when it falls due again is skipped
// (and counted), and after downtime a job fires once, not once per slot.
func (l *Loop) backups(ctx context.Context, cur *revision) {
	now := time.Now()
	for i := range cur.stacks {
		st := &cur.stacks[i]
		for _, b := range st.Spec.Backups {
			if b.Suspend || st.Spec.Suspend {
				continue
			}
			job := backup.NewJob(st, b)
			sched := job.Schedule
			key := job.Key()
			l.seed(key, job)
			before := l.sched.State(key).Skipped
			fire := l.sched.Tick(key, sched, now)
			if n := l.sched.State(key).Skipped - before; n > 0 {
				l.o.Metrics.backupSkipped.WithLabelValues(job.Stack, job.Name).Add(float64(n))
				l.o.Logger.Warn("backup skipped: the previous run is still going", "stack", job.Stack, "job", job.Name)
			}
			if !fire {
				continue
			}
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				defer l.sched.Done(key)
				l.runBackup(ctx, st, job, sched)
			}()
		}
	}
}

// seed gives the scheduler a job's newest backup once, so a restart does
// not take a backup that is not due.
func (l *Loop) seed(key string, job backup.Job) {
	l.mu.Lock()
	done := l.seeded[key]
	l.seeded[key] = true
	l.mu.Unlock()
	if done {
		return
	}
	if bs, err := backup.List(job.Destination, job); err == nil {
		l.sched.Seed(key, backup.LastStarted(bs))
	}
}

// runBackup takes one backup under the job's lock, so that of several dbops
// replicas only one takes it: another replica that gets the lock later finds
// the new backup and the job no longer due.
func (l *Loop) runBackup(ctx context.Context, st *spec.Stack, job backup.Job, sched backup.Schedule) {
	select {
	case l.backupSem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-l.backupSem }()
	lk, err := l.lock(ctx, st, "backup:"+job.Key())
	if errors.Is(err, lock.ErrHeld) {
		l.o.Logger.Info("backup skipped: another dbops process is taking it", "stack", job.Stack, "job", job.Name)
		return
	}
	if err != nil {
		l.o.Metrics.backupFailures.WithLabelValues(job.Stack, job.Name).Inc()
		l.o.Logger.Error("backup failed: cannot take the job's lock", "stack", job.Stack, "job", job.Name, "err", err)
		return
	}
	defer lk.Release(context.WithoutCancel(ctx))
	if bs, err := backup.List(job.Destination, job); err == nil {
		if due, _ := backup.Due(sched, backup.LastStarted(bs), time.Now()); !due {
			l.o.Logger.Info("backup skipped: another dbops process took it", "stack", job.Stack, "job", job.Name)
			return
		}
	}
	m := l.o.Metrics
	opts := l.o.Reconcile.Backup
	opts.Logger = l.o.Logger
	start := time.Now()
	man, err := backup.Run(ctx, job, opts)
	took := time.Since(start)
	res := &BackupResult{At: start, OK: err == nil, Duration: took.Round(time.Millisecond).String(), DurationSeconds: seconds(took)}
	var verr *backup.VerifyError
	switch {
	case errors.As(err, &verr):
		res.Error = err.Error()
		m.backupVerifyFailures.WithLabelValues(job.Stack, job.Name).Inc()
		l.o.Logger.Error("backup failed verification; kept for inspection, not counted", "stack", job.Stack, "job", job.Name, "err", err)
		l.o.Notify.Publish(notify.Event{Event: spec.EventVerificationFailed, Stack: job.Stack,
			Summary: fmt.Sprintf("backup %s failed verification", job.Name), Errors: maskAll([]string{err.Error()})})
	case err != nil:
		res.Error = err.Error()
		m.backupFailures.WithLabelValues(job.Stack, job.Name).Inc()
		l.o.Logger.Error("backup failed", "stack", job.Stack, "job", job.Name, "err", err)
		l.o.Notify.Publish(notify.Event{Event: spec.EventBackupFailed, Stack: job.Stack,
			Summary: fmt.Sprintf("backup %s failed", job.Name), Errors: maskAll([]string{err.Error()})})
	default:
		res.File, res.Size = man.File, man.Size
		m.backupLastSuccess.WithLabelValues(job.Stack, job.Name).Set(float64(man.FinishedAt.Unix()))
		m.backupDuration.WithLabelValues(job.Stack, job.Name).Set(man.Duration().Seconds())
		m.backupSize.WithLabelValues(job.Stack, job.Name).Set(float64(man.Size))
		l.o.Logger.Info("backup taken", "stack", job.Stack, "job", job.Name, "file", man.File, "size", man.Size, "duration_seconds", seconds(man.Duration()))
		l.o.Notify.Publish(notify.Event{Event: spec.EventBackupSucceeded, Stack: job.Stack,
			Summary: fmt.Sprintf("backup %s taken: %s, %d bytes in %s", job.Name, man.File, man.Size, man.Duration().Round(time.Millisecond))})
		res.Pruned = l.prune(ctx, job)
	}
	l.mu.Lock()
	l.backupResults[job.Key()] = res
	l.mu.Unlock()
}

// prune deletes what retention no longer keeps, after a good backup.
func (l *Loop) prune(ctx context.Context, job backup.Job) int {
	obs, err := backup.Observe(ctx, job, time.Now())
	if err != nil {
		l.o.Logger.Error("listing backups for retention failed", "stack", job.Stack, "job", job.Name, "err", err)
		return 0
	}
	n := 0
	for _, d := range obs.Delete {
		if err := backup.Delete(d); err != nil {
			l.o.Logger.Error("pruning a backup failed", "stack", job.Stack, "job", job.Name, "file", d.File, "err", err)
			continue
		}
		n++
		l.o.Logger.Info("backup pruned by retention", "stack", job.Stack, "job", job.Name, "file", d.File)
	}
	l.o.Metrics.backupsPruned.WithLabelValues(job.Stack, job.Name).Add(float64(n))
	return n
}

// backupStatus lists a stack's jobs for /status; l.mu is held.
func (l *Loop) backupStatus(st *spec.Stack) []BackupStatus {
	var out []BackupStatus
	for _, b := range st.Spec.Backups {
		key := st.Metadata.Name + "/" + b.Name
		js := l.sched.State(key)
		out = append(out, BackupStatus{Job: b.Name, Next: js.Next, Running: js.Running, Skipped: js.Skipped, Last: l.backupResults[key],
			Drill: l.lastDrill(key)})
	}
	return out
}
