package loop

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/spec"
)

// Metrics are the loop's Prometheus metrics, on their own registry.
type Metrics struct {
	Registry *prometheus.Registry

	duration      *prometheus.HistogramVec
	lastSuccess   *prometheus.GaugeVec
	drift         *prometheus.GaugeVec
	applied       *prometheus.CounterVec
	failed        *prometheus.CounterVec
	stackFailures *prometheus.CounterVec
	lockHeld      *prometheus.CounterVec
	revision      *prometheus.GaugeVec
	rejected      *prometheus.GaugeVec
	fetchFailures prometheus.Counter
	notifications *prometheus.CounterVec
	buildInfo     *prometheus.GaugeVec

	shardInfo   *prometheus.GaugeVec
	shardStacks *prometheus.GaugeVec
	shardStack  *prometheus.GaugeVec

	backupLastSuccess    *prometheus.GaugeVec
	backupDuration       *prometheus.GaugeVec
	backupSize           *prometheus.GaugeVec
	backupFailures       *prometheus.CounterVec
	backupVerifyFailures *prometheus.CounterVec
	backupsPruned        *prometheus.CounterVec
	backupSkipped        *prometheus.CounterVec
	drill                drillMetrics
	schemaDrift          *prometheus.GaugeVec // drift.go

	// Postgres settings waiting for a server restart (issue 15).
	pendingRestart *prometheus.GaugeVec
}

// NewMetrics registers the dbops_ metrics and the Go runtime's.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dbops_reconcile_duration_seconds",
			Help:    "Time to observe, plan and apply one stack.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"stack"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dbops_last_successful_reconcile_timestamp_seconds",
			Help: "Unix time of the stack's last cycle that ended without error: in sync, applied, or drift left by suspend, driftPolicy report or another process holding the lock.",
		}, []string{"stack"}),
		drift: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dbops_drift_resources",
			Help: "Differences found between the spec and the live servers in the last cycle, per resource.",
		}, []string{"stack", "resource"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dbops_changes_applied_total",
			Help: "Changes applied, per resource (postgres, redis: as in /status and dbops_drift_resources).",
		}, []string{"stack", "resource"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dbops_changes_failed_total",
			Help: "Changes that failed to apply, per resource (postgres, redis).",
		}, []string{"stack", "resource"}),
		stackFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dbops_reconcile_failures_total",
			Help: "Stack cycles that ended in an error (server unreachable, plan refused, apply failed).",
		}, []string{"stack"}),
		lockHeld: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dbops_stack_lock_held_elsewhere_total",
			Help: "Cycles that found drift but did not apply because another dbops held the stack lock.",
		}, []string{"stack"}),
		revision: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dbops_revision_info",
			Help: "The revision in force (value 1).",
		}, []string{"revision"}),
		rejected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dbops_rejected_revision_info",
			Help: "The newest revision rejected because it failed to load, validate or verify (value 1; absent when none).",
		}, []string{"revision"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dbops_notifications_total",
			Help: "Notification deliveries by provider (slack, webhook) and result (sent, failed, dropped).",
		}, []string{"provider", "result"}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dbops_build_info",
			Help: "The dbops build serving (value 1): its version, VCS revision and Go version.",
		}, []string{"version", "revision", "goversion"}),
		fetchFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dbops_source_fetch_failures_total",
			Help: "Failed fetches of the git repository or folder.",
		}),
	}
	job := []string{"stack", "backup_job"} // not "job": Prometheus sets that label on every target
	m.backupLastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dbops_backup_last_success_timestamp_seconds",
		Help: "Unix time the job's last verified backup finished."}, job)
	m.backupDuration = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dbops_backup_duration_seconds",
		Help: "Duration of the job's last successful backup, verification included."}, job)
	m.backupSize = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dbops_backup_size_bytes",
		Help: "Size of the job's last successful backup."}, job)
	m.backupFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dbops_backup_failures_total",
		Help: "Backups that failed to be taken."}, job)
	m.backupVerifyFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dbops_backup_verification_failures_total",
		Help: "Backups taken but failing verification (kept, not counted)."}, job)
	m.backupsPruned = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dbops_backups_pruned_total",
		Help: "Backups deleted by retention."}, job)
	m.backupSkipped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dbops_backup_skipped_total",
		Help: "Scheduled backups skipped because the previous run of the job was still going."}, job)
	m.shardInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dbops_shard_info",
		Help: "This replica's shard (value 1): it reconciles and backs up the stacks whose name hashes to shard of shards."}, []string{"shard", "shards"})
	m.shardStacks = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dbops_shard_stacks",
		Help: "Stacks in the revision in force: owned by this replica's shard, and in total."}, []string{"scope"})
	m.shardStack = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dbops_shard_stack_owned",
		Help: "A stack this replica owns (value 1; absent for the stacks of other shards)."}, []string{"stack"})
	m.Registry.MustRegister(m.shardInfo, m.shardStacks, m.shardStack)
	m.drill = newDrillMetrics(m.Registry)
	m.schemaDrift = newSchemaDriftMetric(m.Registry)
	m.pendingRestart = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dbops_postgres_pending_restart",
		Help: "Managed Postgres settings applied but waiting for a server restart (pg_settings.pending_restart); dbops never restarts a server.",
	}, []string{"stack"})
	m.Registry.MustRegister(m.pendingRestart)
	m.Registry.MustRegister(m.backupLastSuccess, m.backupDuration, m.backupSize, m.backupFailures,
		m.backupVerifyFailures, m.backupsPruned, m.backupSkipped)
	m.Registry.MustRegister(m.duration, m.lastSuccess, m.drift, m.applied, m.failed, m.stackFailures,
		m.lockHeld, m.revision, m.rejected, m.fetchFailures, m.notifications, m.buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// forget removes the series of a stack that left the spec.
func (m *Metrics) forget(stack string) {
	l := prometheus.Labels{"stack": stack}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.duration, m.lastSuccess, m.drift, m.applied, m.failed, m.stackFailures, m.lockHeld,
		m.backupLastSuccess, m.backupDuration, m.backupSize, m.backupFailures, m.backupVerifyFailures,
		m.backupsPruned, m.backupSkipped, m.shardStack, m.drill.lastSuccess, m.drill.duration, m.drill.failures,
		m.schemaDrift,
		m.pendingRestart,
	} {
		v.DeletePartialMatch(l)
	}
}

// SetBuildInfo sets dbops_build_info.
func (m *Metrics) SetBuildInfo(b BuildInfo) {
	m.buildInfo.Reset()
	m.buildInfo.WithLabelValues(b.Version, b.Revision, b.GoVersion).Set(1)
}

// initStack creates a loaded stack's counters at 0, so that increase()
// and rate() see its first failure (a series born at 1 shows no increase).
func (m *Metrics) initStack(st *spec.Stack) {
	name := st.Metadata.Name
	m.stackFailures.WithLabelValues(name).Add(0)
	m.lockHeld.WithLabelValues(name).Add(0)
	var resources []string
	if st.Spec.Postgres != nil {
		resources = append(resources, reconcile.ResourceMigration.Server())
	}
	if st.Spec.Redis != nil {
		resources = append(resources, reconcile.ResourceRedisConfig.Server())
	}
	for _, r := range resources {
		m.applied.WithLabelValues(name, r).Add(0)
		m.failed.WithLabelValues(name, r).Add(0)
	}
	for _, b := range st.Spec.Backups {
		for _, c := range []*prometheus.CounterVec{m.backupFailures, m.backupVerifyFailures, m.backupsPruned, m.backupSkipped} {
			c.WithLabelValues(name, b.Name).Add(0)
		}
		if b.Drill != nil {
			m.drill.failures.WithLabelValues(name, b.Name).Add(0)
		}
	}
}

// CountNotification counts one delivery outcome (notify.Options.Count).
func (m *Metrics) CountNotification(provider, result string) {
	m.notifications.WithLabelValues(provider, result).Inc()
}
