// Package reconcile observes the live servers of each stack, diffs them
// against the spec into a Plan, and applies a Plan.
package reconcile

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/amanat/dbops/reconcile/backup"
	"github.com/amanat/dbops/reconcile/drift"
	"github.com/amanat/dbops/reconcile/pool"
	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/reconcile/redis"
	"github.com/amanat/dbops/reconcile/risk"
	"github.com/amanat/dbops/spec"
)

// FormatVersion identifies the JSON form of a Plan (schemas/plan.schema.json).
const FormatVersion = "dbops.plan/v1"

// Plan is every change needed to bring the live stacks to their spec.
type Plan struct {
	FormatVersion string      `json:"formatVersion"`
	CreatedAt     time.Time   `json:"createdAt"`
	Stacks        []StackPlan `json:"stacks"`
}

// StackPlan is the plan of one stack. A stack with Errors is not applied.
type StackPlan struct {
	Stack    string          `json:"stack"`
	File     string          `json:"file"`
	Postgres *PostgresStatus `json:"postgres,omitempty"`
	Redis    *RedisStatus    `json:"redis,omitempty"`
	Backups  []BackupStatus  `json:"backups,omitempty"`
	Changes  []Change        `json:"changes"`
	Warnings []string        `json:"warnings,omitempty"`
	// Errors keep their class (ClassOf): `dbops run` retries transient
	// ones with backoff and waits for a new revision after permanent ones.
	Errors Errors `json:"errors,omitempty"`
}

// PostgresStatus is the migration level now and after the plan.
type PostgresStatus struct {
	Server string `json:"server"`
	// ServerVersion is the server's version, shown as Redis's is;
	// ServerVersionNum lets plan compare it with pg_dump's.
	ServerVersion    string `json:"serverVersion,omitempty"`
	ServerVersionNum int    `json:"serverVersionNum,omitempty"`
	VersionBefore    int64  `json:"versionBefore"`
	VersionAfter     int64  `json:"versionAfter"`
	Target           string `json:"target,omitempty"`
	Error            string `json:"error,omitempty"`
	// Applied lists the versions applied when observed: part of a saved
	// plan's fingerprint. For drizzle, the recorded created_at values.
	Applied []int64 `json:"applied,omitempty"`
	// Format is goose or drizzle.
	Format string `json:"format,omitempty"`
	// LevelBefore and LevelAfter show the level as its users name it: the
	// goose version, or the last applied drizzle tag ("none").
	LevelBefore string `json:"levelBefore,omitempty"`
	LevelAfter  string `json:"levelAfter,omitempty"`
	// Session is the lock_timeout and statement_timeout pending migrations
	// run with, and how a lock timeout is retried.
	Session string `json:"session,omitempty"`
	// Checksums compares the applied goose migrations with their files
	// (dbops' ledger; drizzle's own hashes are checked by its Diff).
	Checksums *ChecksumStatus `json:"checksums,omitempty"`
	// Drift is the live schema compared with the applied migrations'.
	Drift *DriftStatus `json:"drift,omitempty"`
	// PendingRestart lists the managed settings whose value waits for a
	// server restart (pgserver.go).
	PendingRestart []string `json:"pendingRestart,omitempty"`
}

// RedisStatus describes the observed Redis server.
type RedisStatus struct {
	Server     string `json:"server"`
	Version    string `json:"version"`
	ConfigFile string `json:"configFile"`
	// Persisted is false when the server has no config file: applied
	// settings are then lost on restart.
	Persisted bool   `json:"persisted"`
	Error     string `json:"error,omitempty"`
	// Observed holds the CONFIG GET answer of every managed parameter:
	// part of a saved plan's fingerprint.
	Observed map[string]string `json:"observed,omitempty"`
	// KeyspaceJobs are the stack's keyspace jobs: done, pending or waiting.
	KeyspaceJobs []KeyspaceJobStatus `json:"keyspaceJobs,omitempty"`
}

// Change is one difference between the spec and a live server.
type Change struct {
	Stack    string `json:"stack"`
	Resource string `json:"resource"` // e.g. redis.config.maxmemory, postgres.migration.12
	Kind     Kind   `json:"kind"`
	Name     string `json:"name"` // the parameter, the migration file, the backup job
	Action   Action `json:"action"`
	Before   string `json:"before"`
	After    string `json:"after"`
	Version  int64  `json:"version,omitempty"` // of a migration
	// Risk says why the change is risky; apply refuses risky changes
	// unless allowed or inside a maintenance window.
	Risk string `json:"risk,omitempty"`
	// Deferred says when a risky change will be applied: at the next
	// maintenance window.
	Deferred string `json:"deferred,omitempty"`
	// Session is set on a migration whose file sets its own timeouts, or
	// that is NO TRANSACTION (never retried).
	Session string `json:"session,omitempty"`
	// BeforeMigrate marks the backup of the stack's backupBeforeMigrate
	// job that guards its migrations: apply takes it first, and not at all
	// when no migration is left to run.
	BeforeMigrate bool `json:"beforeMigrate,omitempty"`
}

// HasChanges reports whether applying the plan would change anything.
func (p *Plan) HasChanges() bool {
	for _, s := range p.Stacks {
		if len(s.Changes) > 0 {
			return true
		}
	}
	return false
}

// HasErrors reports whether any stack could not be planned.
func (p *Plan) HasErrors() bool {
	for _, s := range p.Stacks {
		if len(s.Errors) > 0 {
			return true
		}
	}
	return false
}

// DefaultGrace is how long a running migration may go on after shutdown
// begins (Options.Grace, dbops run --grace).
const DefaultGrace = 30 * time.Second

// Options tune how servers are reached.
type Options struct {
	// ConnectTimeout bounds each connection attempt;
	// spec.DefaultConnectTimeout when zero.
	ConnectTimeout time.Duration
	// Concurrency bounds how many stacks are worked on at once; 8 when zero.
	Concurrency int
	// Grace is how long a running migration may go on once the context is
	// cancelled, before its statement is cancelled too; DefaultGrace when zero.
	Grace time.Duration
	// Backup configures pg_dump/pg_restore for backup jobs.
	Backup backup.Options
	// SkipBackups leaves backup jobs out of plans: `dbops run` schedules
	// them itself, so a long dump never holds up drift correction.
	SkipBackups bool
	// AllowRisky applies risky changes outside maintenance windows.
	AllowRisky bool
	// IndexThreshold is the table size over which CREATE INDEX without
	// CONCURRENTLY is risky; risk.DefaultIndexThreshold when zero.
	IndexThreshold int64
	// Now is the clock for windows and backup schedules; time.Now when nil.
	Now func() time.Time
	// LockRetry bounds the retries of a migration that timed out waiting
	// for a lock; the zero value is postgres.DefaultLockRetries after 1 s.
	LockRetry postgres.Retry
	// SkipDrift leaves schema drift out of plans (plan --no-drift; dbops
	// run checks it on spec.postgres.drift.interval instead).
	SkipDrift bool
	// DriftCache keeps expected schemas between drift checks; nil rebuilds
	// them every time.
	DriftCache drift.Cache
	// Pool, when set, lends the plan its read-only sessions across cycles
	// (`dbops run`); without it each plan connects and disconnects.
	Pool *pool.Pool
	// Progress, when set, hears of each change Apply starts and ends.
	Progress Progress
	// KeyspaceScan bounds plan's count of the keys a keyspace job matches;
	// its Count is also apply's SCAN/UNLINK batch.
	KeyspaceScan redis.Bound
	// Lock, when set, is called by Apply before it applies a stack's plan
	// and holds what it returns (release) until that stack is done: the CLI
	// takes the stack's lock there when it could not hold every stack's
	// lock from planning on. An error leaves the stack unapplied.
	Lock func(ctx context.Context, st *spec.Stack, sp *StackPlan) (release func(), err error)
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o Options) grace() time.Duration {
	if o.Grace <= 0 {
		return DefaultGrace
	}
	return o.Grace
}

func (o Options) timeout() time.Duration { return o.Timeout() }

// Timeout is the connect timeout in force: ConnectTimeout or its default.
func (o Options) Timeout() time.Duration {
	if o.ConnectTimeout <= 0 {
		return spec.DefaultConnectTimeout
	}
	return o.ConnectTimeout
}

// forEach runs fn for each stack, at most o.Concurrency at once.
func (o Options) forEach(n int, fn func(i int)) {
	limit := o.Concurrency
	if limit <= 0 {
		limit = 8
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(i)
		}()
	}
	wg.Wait()
}

// PlanStacks observes every stack's servers with read-only access and diffs
// them against the spec. A stack whose servers fail records the error in its
// StackPlan; the other stacks are still planned.
func PlanStacks(ctx context.Context, stacks []spec.Stack, o Options) *Plan {
	p := &Plan{FormatVersion: FormatVersion, CreatedAt: time.Now().UTC(), Stacks: make([]StackPlan, len(stacks))}
	o.forEach(len(stacks), func(i int) {
		conns := openConns(&stacks[i], o, true)
		defer conns.close()
		p.Stacks[i] = planStack(ctx, &stacks[i], conns, o)
	})
	return p
}

// conns are one stack's server handles.
type conns struct {
	pg    *sql.DB
	redis *goredis.Client
	err   Errors
	// release gives pooled handles back instead of closing them.
	release []pool.Release
}

func openConns(st *spec.Stack, o Options, readOnly bool) *conns {
	if readOnly && o.Pool != nil {
		return pooledConns(st, o)
	}
	c := &conns{}
	if pg := st.Spec.Postgres; pg != nil {
		db, err := postgres.Open(pg.URL, o.timeout(), readOnly)
		if err != nil {
			c.err = append(c.err, err)
		}
		c.pg = db
	}
	if r := st.Spec.Redis; r != nil {
		cl, err := redis.Open(r.URL, o.timeout())
		if err != nil {
			c.err = append(c.err, err)
		}
		c.redis = cl
	}
	return c
}

// pooledConns borrows the plan's read-only handles from o.Pool.
func pooledConns(st *spec.Stack, o Options) *conns {
	c := &conns{}
	if pg := st.Spec.Postgres; pg != nil {
		db, rel, err := o.Pool.Postgres(pg.URL, o.timeout())
		if err != nil {
			c.err = append(c.err, err)
		} else {
			c.pg = db
			c.release = append(c.release, rel)
		}
	}
	if r := st.Spec.Redis; r != nil {
		cl, rel, err := o.Pool.Redis(r.URL, o.timeout())
		if err != nil {
			c.err = append(c.err, err)
		} else {
			c.redis = cl
			c.release = append(c.release, rel)
		}
	}
	return c
}

func (c *conns) close() {
	if c.release != nil {
		for _, rel := range c.release {
			rel()
		}
		return
	}
	if c.pg != nil {
		c.pg.Close()
	}
	if c.redis != nil {
		c.redis.Close()
	}
}

func planStack(ctx context.Context, st *spec.Stack, c *conns, o Options) StackPlan {
	sp := StackPlan{Stack: st.Metadata.Name, File: st.File, Changes: []Change{}, Errors: c.err}
	if len(c.err) > 0 {
		return sp
	}
	if pg := st.Spec.Postgres; pg != nil {
		status, changes, err := planPostgres(ctx, st, c.pg, o)
		sp.Postgres = status
		sp.Changes = append(sp.Changes, changes...)
		if cs := status.Checksums; cs != nil && cs.Warning != "" {
			sp.Warnings = append(sp.Warnings, cs.Warning)
		}
		if err != nil {
			status.Error = err.Error()
			sp.Errors = append(sp.Errors, err)
		} else {
			if pg.Drift != nil && pg.Migrations != nil && !o.SkipDrift {
				status.Drift = planDrift(ctx, st, c.pg, o)
			}
			if err := planServerState(ctx, st, c.pg, o, &sp); err != nil {
				status.Error = err.Error()
				sp.Errors = append(sp.Errors, err)
			}
		}
	}
	if r := st.Spec.Redis; r != nil {
		status, changes, warn, err := planRedis(ctx, st, c.redis, o)
		sp.Redis = status
		sp.Changes = append(sp.Changes, changes...)
		if warn != "" {
			sp.Warnings = append(sp.Warnings, warn)
		}
		if err != nil {
			status.Error = err.Error()
			sp.Errors = append(sp.Errors, err)
		} else if err := planKeyspace(ctx, st, c.redis, &sp, o); err != nil {
			status.Error = err.Error()
			sp.Errors = append(sp.Errors, err)
		}
	}
	if len(st.Spec.Backups) > 0 && !o.SkipBackups {
		var changes []Change
		sp.Backups, changes = planBackups(ctx, st, o.now())
		sp.Changes = append(sp.Changes, changes...)
		sp.Warnings = append(sp.Warnings, pgDumpWarnings(ctx, sp, o)...)
		for _, b := range sp.Backups {
			if b.Error != "" {
				sp.Errors = append(sp.Errors, errors.New("backup "+b.Job+": "+b.Error))
			}
		}
	}
	deferRisky(&sp, st, o)
	driftWarning(&sp, st)
	if job := st.Spec.BackupBeforeMigrate; job != "" && hasKind(sp.Changes, ResourceMigration) &&
		!slices.ContainsFunc(sp.Changes, func(c Change) bool { return c.Kind == ResourceBackup && c.Name == job }) {
		sp.Changes = append(sp.Changes, Change{Stack: st.Metadata.Name, Kind: ResourceBackup, Resource: ResourceBackup.Address(job),
			Name: job, Action: ActionBackup, BeforeMigrate: true, Before: "backupBeforeMigrate", After: "verified backup before any migration"})
	}
	return sp
}

// serverError wraps a connection or query failure with the server's name and
// what to check, without credentials. The driver's error cannot be wrapped
// (its text may hold the password), so its class is kept instead.
func serverError(kind, server string, err error, secret string) error {
	return classed(ClassOf(err), fmt.Errorf("%s %s: %s", kind, server, spec.RedactText(spec.Scrub(err.Error(), secret))))
}

func planPostgres(ctx context.Context, st *spec.Stack, db *sql.DB, o Options) (*PostgresStatus, []Change, error) {
	pg := st.Spec.Postgres
	server := postgres.Server(pg.URL)
	status := &PostgresStatus{Server: server}
	// Reading the version is also the connection check, and costs no
	// statement (the server reported it at login). Only when it fails does
	// a ping tell "cannot connect" from a server that does not answer it
	// (not fatal: the plan only shows the version, and warns about an old
	// pg_dump).
	pctx, cancel := context.WithTimeout(ctx, o.timeout())
	var err error
	status.ServerVersion, status.ServerVersionNum, err = postgres.ServerVersion(pctx, db)
	if err != nil {
		status.ServerVersion, status.ServerVersionNum = "", 0
		err = db.PingContext(pctx)
	}
	cancel()
	if err != nil {
		return status, nil, serverError("postgres", server, transient(fmt.Errorf("cannot connect: %w", err)), spec.Password(pg.URL))
	}
	m := pg.Migrations
	if m == nil {
		return status, nil, nil
	}
	status.Target = m.Target.String()
	status.Format = m.Format
	eng := postgres.EngineFor(m)
	live, err := eng.Observe(ctx, db)
	if err != nil {
		return status, nil, serverError("postgres", server, err, spec.Password(pg.URL))
	}
	status.VersionBefore, status.VersionAfter, status.Applied = live.Version(), live.Version(), live.Applied
	status.LevelBefore = eng.Name(live.Version())
	status.LevelAfter = status.LevelBefore
	mp, err := eng.Diff(live)
	if err != nil {
		// the spec contradicts the live level: only a new revision helps
		return status, nil, permanent(fmt.Errorf("spec.postgres.migrations: %w", err))
	}
	status.VersionAfter, status.LevelAfter = mp.To, eng.Name(mp.To)
	var changes []Change
	if mp.Baseline != nil {
		changes = append(changes, baselineChange(st, m, eng, live, mp))
	}
	for _, s := range mp.Steps {
		c := Change{Stack: st.Metadata.Name, Kind: ResourceMigration, Name: s.Name, Version: s.Version,
			Resource: ResourceMigration.Address(eng.Name(s.Version)),
			Action:   ActionUp, Before: "pending", After: "applied"}
		if s.Down {
			c.Action, c.Before, c.After = ActionDown, "applied", "rolled back"
		}
		changes = append(changes, c)
	}
	threshold := o.IndexThreshold
	if threshold <= 0 {
		threshold = risk.DefaultIndexThreshold
	}
	migrationRisks(ctx, db, eng, changes, threshold)
	describeSessions(eng, m, status, changes, o.LockRetry)
	if !postgres.KeepsLedger(m) {
		return status, changes, nil
	}
	sums, record, err := planChecksums(ctx, st, db, live)
	status.Checksums = sums
	return status, append(record, changes...), err
}

func planRedis(ctx context.Context, st *spec.Stack, c *goredis.Client, o Options) (*RedisStatus, []Change, string, error) {
	r := st.Spec.Redis
	server := redis.Server(r.URL)
	status := &RedisStatus{Server: server}
	names := make([]string, 0, len(r.Config)+len(riskParams))
	for n := range r.Config {
		names = append(names, n)
	}
	for _, n := range riskParams {
		if _, ok := r.Config[n]; !ok {
			names = append(names, n)
		}
	}
	octx, cancel := context.WithTimeout(ctx, o.timeout())
	live, err := redis.Observe(octx, c, names)
	cancel()
	if err != nil {
		return status, nil, "", serverError("redis", server, err, spec.Password(r.URL))
	}
	status.Version, status.ConfigFile, status.Persisted = live.Version, live.ConfigFile, live.ConfigFile != ""
	status.Observed = map[string]string{}
	for n := range r.Config {
		status.Observed[n] = live.Values[n]
	}
	diff, err := redis.Diff(r.Config, live)
	if err != nil {
		return status, nil, "", permanent(fmt.Errorf("spec.redis.config: redis %s: %w", server, err))
	}
	var changes []Change
	for _, d := range diff {
		changes = append(changes, Change{Stack: st.Metadata.Name, Kind: ResourceRedisConfig, Name: d.Param,
			Resource: ResourceRedisConfig.Address(d.Param), Action: ActionUpdate, Before: d.Before, After: d.After})
	}
	redisRisks(live, changes)
	warn := ""
	if len(changes) > 0 && !status.Persisted {
		warn = fmt.Sprintf("redis %s runs without a config file: CONFIG REWRITE is impossible, so these settings will be lost when it restarts (dbops run puts them back)", server)
	}
	if major, err := strconv.Atoi(strings.SplitN(live.Version, ".", 2)[0]); len(changes) > 0 && err == nil && major < 7 {
		return status, changes, warn, fmt.Errorf("redis %s is version %s: dbops needs Redis 7 or later (CONFIG SET of several parameters at once)", server, live.Version)
	}
	return status, changes, warn, nil
}

func hasKind(changes []Change, kind Kind) bool {
	return slices.ContainsFunc(changes, func(c Change) bool { return c.Kind == kind })
}

// Levels names the migration level before and after: goose versions, or
// drizzle tags.
func (pg *PostgresStatus) Levels() (word, before, after string) {
	if pg.Format == spec.FormatDrizzle {
		return "level", pg.LevelBefore, pg.LevelAfter
	}
	return "version", strconv.FormatInt(pg.VersionBefore, 10), strconv.FormatInt(pg.VersionAfter, 10)
}
