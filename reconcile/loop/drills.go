package loop

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/amanat/dbops/reconcile/backup"
	"github.com/amanat/dbops/reconcile/lock"
	"github.com/amanat/dbops/spec"
)

// drillState holds the loop's restore drills: a scheduler of their own
// and each job's last report.
type drillState struct {
	sched  *backup.Scheduler
	mu     sync.Mutex
	seeded map[string]bool
	last   map[string]*backup.DrillReport
}

func newDrillState() *drillState {
	return &drillState{sched: backup.NewScheduler(), seeded: map[string]bool{}, last: map[string]*backup.DrillReport{}}
}

// drillMetrics are the drills' series, registered with the loop's.
type drillMetrics struct {
	lastSuccess *prometheus.GaugeVec
	duration    *prometheus.GaugeVec
	failures    *prometheus.CounterVec
}

func newDrillMetrics(r *prometheus.Registry) drillMetrics {
	job := []string{"stack", "backup_job"} // not "job": Prometheus sets that label on every target
	m := drillMetrics{
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dbops_backup_drill_last_success_timestamp_seconds",
			Help: "Unix time the job's last successful restore drill finished."}, job),
		duration: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dbops_backup_drill_duration_seconds",
			Help: "Recovery time measured by the job's last successful restore drill: download, restore and checks."}, job),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dbops_backup_drill_failures_total",
			Help: "Restore drills that failed (no backup, restore error, row counts or checks)."}, job),
	}
	r.MustRegister(m.lastSuccess, m.duration, m.failures)
	return m
}

// drills fires the restore drills that are due at now. A drill has no
// record outside the process: a job is seeded with the time the loop first
// sees it, so the first drill runs at its next scheduled time.
func (l *Loop) drills(ctx context.Context, cur *revision, now time.Time) {
	for i := range cur.stacks {
		st := &cur.stacks[i]
		for _, b := range st.Spec.Backups {
			if b.Drill == nil || b.Suspend || st.Spec.Suspend {
				continue
			}
			job := backup.NewJob(st, b)
			key := "drill:" + job.Key()
			l.drillState.mu.Lock()
			if !l.drillState.seeded[key] {
				l.drillState.seeded[key] = true
				l.drillState.sched.Seed(key, now)
			}
			l.drillState.mu.Unlock()
			if !l.drillState.sched.Tick(key, b.Drill.Schedule, now) {
				continue
			}
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				defer l.drillState.sched.Done(key)
				l.runDrill(ctx, st, job)
			}()
		}
	}
}

// runDrill runs one drill under a lock of its own, so that of several
// replicas one drills; it shares the backups' concurrency limit.
func (l *Loop) runDrill(ctx context.Context, st *spec.Stack, job backup.Job) {
	select {
	case l.backupSem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-l.backupSem }()
	m := l.o.Metrics.drill
	lk, err := l.lock(ctx, st, "drill:"+job.Key())
	if errors.Is(err, lock.ErrHeld) {
		l.o.Logger.Info("restore drill skipped: another dbops process runs it", "stack", job.Stack, "job", job.Name)
		return
	}
	if err != nil {
		m.failures.WithLabelValues(job.Stack, job.Name).Inc()
		l.o.Logger.Error("restore drill failed: cannot take its lock", "stack", job.Stack, "job", job.Name, "err", err)
		return
	}
	defer lk.Release(context.WithoutCancel(ctx))
	opts := l.o.Reconcile.Backup
	opts.Logger = l.o.Logger
	rep, err := backup.Drill(ctx, job, opts)
	if err != nil {
		m.failures.WithLabelValues(job.Stack, job.Name).Inc()
		l.o.Logger.Error("restore drill failed", "event", "backup.drill.failed", "stack", job.Stack, "job", job.Name, "backup", rep.Backup, "err", err)
	} else {
		m.lastSuccess.WithLabelValues(job.Stack, job.Name).Set(float64(time.Now().Unix()))
		m.duration.WithLabelValues(job.Stack, job.Name).Set(rep.RecoveryTime)
		l.o.Logger.Info("restore drill passed", "stack", job.Stack, "job", job.Name, "backup", rep.Backup,
			"recovery_time_seconds", rep.RecoveryTime, "detail", rep.Detail)
	}
	l.drillState.mu.Lock()
	l.drillState.last[job.Key()] = &rep
	l.drillState.mu.Unlock()
}

// lastDrill is a job's last drill report for /status, or nil.
func (l *Loop) lastDrill(key string) *backup.DrillReport {
	l.drillState.mu.Lock()
	defer l.drillState.mu.Unlock()
	return l.drillState.last[key]
}
