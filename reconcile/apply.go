package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/reconcile/redis"
	"github.com/amanat/dbops/spec"
)

// Result is what Apply did to each stack.
type Result struct {
	Stacks []StackResult `json:"stacks"`
}

// StackResult is what Apply did to one stack.
type StackResult struct {
	Stack   string         `json:"stack"`
	Changes []ChangeResult `json:"changes"`
	Errors  Errors         `json:"errors,omitempty"`
	// Postgres is the migration version after applying, when known.
	PostgresVersion *int64 `json:"postgresVersion,omitempty"`
	// PostgresLevel names it: the goose version or the last drizzle tag.
	PostgresLevel string `json:"postgresLevel,omitempty"`
}

// ChangeResult is one Change and its outcome.
type ChangeResult struct {
	Change
	Status Status `json:"status"`
	Error  string `json:"error,omitempty"`
	// Retries counts the runs again of a migration after a lock timeout.
	Retries int `json:"retries,omitempty"`
	// Stored is the value a server stored instead of After (Redis clamps
	// some values); set only on such a failed change.
	Stored string `json:"stored,omitempty"`
	// Keys is how many keys a keyspace job deleted.
	Keys *int64 `json:"keys,omitempty"`
}

// adjustedOutcome marks the parameters Redis stored differently as failed,
// naming both values, and the others as done.
func adjustedOutcome(cfg []Change, adj *redis.AdjustedError) []ChangeResult {
	out := outcome(cfg, StatusDone, "")
	for i, c := range cfg {
		for _, a := range adj.Params {
			if a.Param == c.Name {
				out[i].Status, out[i].Error, out[i].Stored = StatusFailed, a.String(), a.Stored
			}
		}
	}
	return out
}

// Failed reports whether any change or stack failed.
func (r *Result) Failed() bool {
	for _, s := range r.Stacks {
		if len(s.Errors) > 0 {
			return true
		}
		for _, c := range s.Changes {
			if c.Status != StatusDone && c.Status != StatusDeferred {
				return true
			}
		}
	}
	return false
}

// Apply carries out plan on the stacks it was made from. Stacks whose plan
// has errors are skipped. Redis parameters of a stack are set in one
// CONFIG SET; migrations run through goose up (or down) to the planned version.
func Apply(ctx context.Context, stacks []spec.Stack, plan *Plan, o Options) *Result {
	byName := map[string]*spec.Stack{}
	for i := range stacks {
		byName[stacks[i].Metadata.Name] = &stacks[i]
	}
	res := &Result{Stacks: make([]StackResult, len(plan.Stacks))}
	o.forEach(len(plan.Stacks), func(i int) {
		sp := &plan.Stacks[i]
		st, ok := byName[sp.Stack]
		switch {
		case !ok:
			res.Stacks[i] = StackResult{Stack: sp.Stack, Errors: Errors{permanent(errors.New("stack is in the plan but not in the spec"))}}
		case len(sp.Errors) > 0:
			res.Stacks[i] = StackResult{Stack: sp.Stack, Errors: sp.Errors, Changes: outcome(sp.Changes, StatusSkipped, "")}
		case o.Lock != nil && len(sp.Changes) > 0:
			release, err := o.Lock(ctx, st, sp)
			if err != nil {
				res.Stacks[i] = StackResult{Stack: sp.Stack, Errors: Errors{err}, Changes: outcome(sp.Changes, StatusSkipped, "")}
				return
			}
			res.Stacks[i] = applyStack(ctx, st, sp, o)
			release()
		default:
			res.Stacks[i] = applyStack(ctx, st, sp, o)
		}
	})
	return res
}

func outcome(changes []Change, status Status, msg string) []ChangeResult {
	out := make([]ChangeResult, len(changes))
	for i, c := range changes {
		out[i] = ChangeResult{Change: c, Status: status, Error: msg}
	}
	return out
}

func applyStack(ctx context.Context, st *spec.Stack, sp *StackPlan, o Options) StackResult {
	sr := StackResult{Stack: sp.Stack}
	changes, held := gate(st, sp.Changes, o)
	sr.Changes = held
	var cfg, migs, backups, record, jobs, server []Change
	for _, c := range changes {
		switch c.Kind {
		case ResourceKeyspaceJob:
			jobs = append(jobs, c)
		case ResourceRedisConfig:
			cfg = append(cfg, c)
		case ResourceMigration:
			migs = append(migs, c)
		case ResourceChecksums:
			record = append(record, c)
		case ResourceSetting, ResourceExtension:
			server = append(server, c)
		default:
			backups = append(backups, c)
		}
	}
	if len(migs) == 0 { // no migration left to back up for
		backups = slices.DeleteFunc(backups, func(c Change) bool { return c.BeforeMigrate })
	}
	if len(cfg)+len(migs)+len(backups)+len(record)+len(jobs)+len(server) == 0 {
		return sr
	}
	c := openConns(st, o, false)
	defer c.close()
	if len(c.err) > 0 {
		sr.Errors = c.err
		sr.Changes = append(sr.Changes, outcome(changes, StatusSkipped, "")...)
		return sr
	}
	// An interrupted apply (Ctrl-C, shutdown) starts nothing new: each
	// step below first checks ctx.
	if res, stop := interrupted(ctx, changes); stop {
		sr.Changes = append(sr.Changes, res...)
		return sr
	}
	if len(cfg) > 0 {
		sr.Changes = append(sr.Changes, o.around(cfg, func() []ChangeResult { return applyRedis(ctx, st, sp, c, cfg) })...)
	}
	if job := st.Spec.BackupBeforeMigrate; job != "" && len(migs) > 0 {
		// The runbook's maintenance checklist: back up first. The plan holds
		// this backup as a change of its own.
		// It is either the change added for it, or the job's own when due anyway.
		i := slices.IndexFunc(backups, func(ch Change) bool {
			return ch.BeforeMigrate || ch.Kind == ResourceBackup && ch.Name == job
		})
		if i >= 0 && ctx.Err() == nil {
			res := applyBackups(ctx, st, backups[i:i+1], o)
			sr.Changes = append(sr.Changes, res...)
			backups = slices.Delete(backups, i, i+1)
			if res[0].Status != StatusDone {
				msg := fmt.Sprintf("not run: backupBeforeMigrate job %s failed", job)
				sr.Changes = append(sr.Changes, outcome(migs, StatusFailed, msg)...)
				migs = nil
			}
		}
	}
	if res, stop := interrupted(ctx, slices.Concat(server, record, migs, jobs, backups)); stop {
		sr.Changes = append(sr.Changes, res...)
		return sr
	}
	if len(server) > 0 { // settings and extensions first: migrations may use them
		sr.Changes = append(sr.Changes, o.around(server, func() []ChangeResult { return applyServerState(ctx, st, c, server) })...)
	}
	if len(record) > 0 { // before migrations: adoption covers what ran before dbops
		sr.Changes = append(sr.Changes, o.around(record, func() []ChangeResult { return applyRecord(ctx, st, c, record) })...)
	}
	if len(migs) > 0 {
		res, err := applyMigrations(ctx, st, sp, c, migs, o)
		sr.Changes = append(sr.Changes, res...)
		if err != nil {
			sr.Errors = append(sr.Errors, err)
		}
		eng := postgres.EngineFor(st.Spec.Postgres.Migrations)
		if live, err := eng.Observe(ctx, c.pg); err == nil {
			v := live.Version()
			sr.PostgresVersion = &v
			sr.PostgresLevel = eng.Name(v)
		}
	}
	if res, stop := interrupted(ctx, slices.Concat(jobs, backups)); stop {
		sr.Changes = append(sr.Changes, res...)
		return sr
	}
	if len(jobs) > 0 { // after the migrations: a job may wait for one
		sr.Changes = append(sr.Changes, o.around(jobs, func() []ChangeResult { return applyKeyspace(ctx, st, c, jobs, held, o) })...)
	}
	if len(backups) > 0 {
		sr.Changes = append(sr.Changes, applyBackups(ctx, st, backups, o)...)
	}
	return sr
}

func applyRedis(ctx context.Context, st *spec.Stack, sp *StackPlan, c *conns, cfg []Change) []ChangeResult {
	r := st.Spec.Redis
	changes := make([]redis.Change, len(cfg))
	for i, ch := range cfg {
		changes[i] = redis.Change{Param: ch.Name, Before: ch.Before, After: ch.After}
	}
	err := redis.Apply(ctx, c.redis, changes, sp.Redis != nil && sp.Redis.Persisted)
	var adj *redis.AdjustedError
	if errors.As(err, &adj) {
		return adjustedOutcome(cfg, adj)
	}
	if err != nil {
		err = serverError("redis", redis.Server(r.URL), err, spec.Password(r.URL))
		return outcome(cfg, StatusFailed, err.Error())
	}
	return outcome(cfg, StatusDone, "")
}

// applyRecord backfills the checksum ledger.
func applyRecord(ctx context.Context, st *spec.Stack, c *conns, record []Change) []ChangeResult {
	pg := st.Spec.Postgres
	if err := recordChecksums(ctx, c.pg, pg.Migrations); err != nil {
		err = serverError("postgres", postgres.Server(pg.URL), err, spec.Password(pg.URL))
		return outcome(record, StatusFailed, err.Error())
	}
	return outcome(record, StatusDone, "")
}

// applyMigrations runs the migrations through the stack's engine, with
// their session timeouts and lock retries; the goose engine then records
// their checksums. The error is about that record only: the migrations'
// own outcome is in the results.
func applyMigrations(ctx context.Context, st *spec.Stack, sp *StackPlan, c *conns, migs []Change, o Options) ([]ChangeResult, error) {
	pg := st.Spec.Postgres
	server := postgres.Server(pg.URL)
	var p postgres.Plan
	for _, ch := range migs {
		if ch.Action == ActionBaseline {
			p.Baseline = &postgres.Baseline{Version: ch.Version, Name: ch.Name} // the engine lists what it records
			continue
		}
		p.Steps = append(p.Steps, postgres.Step{Version: ch.Version, File: ch.Name, Name: ch.Name, Down: ch.Action == ActionDown})
	}
	if sp.Postgres != nil {
		p.From = sp.Postgres.VersionBefore
	}
	if msg := blockedByDrift(ctx, st, c, p, o); msg != "" {
		return outcome(migs, StatusFailed, msg), nil
	}
	fail := func(err error) string { return serverError("postgres", server, err, spec.Password(pg.URL)).Error() }
	var base []Change
	if p.Baseline != nil {
		base = slices.DeleteFunc(slices.Clone(migs), func(c Change) bool { return c.Action != ActionBaseline })
		for _, c := range base {
			o.progress().Started(c)
		}
	}
	done, err := postgres.EngineFor(pg.Migrations).Migrate(ctx, c.pg, p, o.grace(), postgres.MigrateOptions{
		Open: postgres.OpenerFor(pg.URL, o.timeout()), Retry: o.LockRetry, Started: o.migrationStarted(migs, fail)})
	var recErr error
	if lerr := (*postgres.LedgerError)(nil); errors.As(err, &lerr) {
		recErr = serverError("postgres", server, fmt.Errorf("migrations applied, but their checksums were not recorded (the next plan records them at adoption): %w", lerr.Err), spec.Password(pg.URL))
		err = lerr.Migrate
	}
	out := migrationResults(migs, done, err, fail)
	for _, r := range out {
		if r.Action == ActionBaseline {
			o.progress().Finished(r)
		}
	}
	if err == nil {
		explainSkipped(ctx, pg, o, out)
	}
	return out, recErr
}

// explainSkipped says why goose skipped a planned migration without error:
// another process (a second apply, a goose CLI) ran it while this one
// waited for goose's migration lock. (The drizzle engine re-reads the
// level under its lock and fails with "moved since the plan" instead.)
func explainSkipped(ctx context.Context, pg *spec.Postgres, o Options, out []ChangeResult) {
	if !slices.ContainsFunc(out, func(r ChangeResult) bool { return r.Status == StatusSkipped && r.Error == "" }) {
		return
	}
	// read on a read-only handle of its own, as plan does
	db, err := postgres.Open(pg.URL, o.timeout(), true)
	if err != nil {
		return
	}
	defer db.Close()
	live, err := postgres.EngineFor(pg.Migrations).Observe(ctx, db)
	if err != nil {
		return
	}
	for i, r := range out {
		if r.Status != StatusSkipped || r.Error != "" {
			continue
		}
		applied := slices.Contains(live.Applied, r.Version)
		switch {
		case r.Action == ActionDown && !applied:
			out[i].Error = "already rolled back by another process while waiting for the migration lock"
		case r.Action != ActionDown && applied:
			out[i].Error = "already applied by another process while waiting for the migration lock"
		}
	}
}
