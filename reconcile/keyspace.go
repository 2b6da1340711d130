package reconcile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/amanat/dbops/reconcile/lock"
	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/reconcile/redis"
	"github.com/amanat/dbops/spec"
)

// Keyspace job states in a plan.
const (
	JobDone    = "done"    // recorded in dbops:keyspace-jobs: in sync
	JobPending = "pending" // a change of the plan
	JobWaiting = "waiting" // its `after` migration is neither applied nor planned
)

// KeyspaceJobStatus is one keyspace job as plan observed it.
type KeyspaceJobStatus struct {
	ID    string `json:"id"`
	Match string `json:"match"`
	DB    int    `json:"db"`
	State string `json:"state"`
	// Keys counts the matching keys of a pending job; AtLeast says the
	// count stopped at the plan's bound (time or calls), so there may be more.
	Keys    int64 `json:"keys"`
	AtLeast bool  `json:"atLeast,omitempty"`
	// After is the migration the job waits for (file or tag).
	After string `json:"after,omitempty"`
	// RanAt and Deleted are the record of a done job.
	RanAt   *time.Time `json:"ranAt,omitempty"`
	Deleted int64      `json:"deleted,omitempty"`
}

// leaseTTL bounds how long a crashed run keeps a job from being run again;
// a run that is still going past it may overlap with another, which then
// finds the record and reports it (HSETNX keeps one record).
const leaseTTL = 10 * time.Minute

// planKeyspace plans the stack's keyspace jobs: recorded ones are in sync,
// others pending (a change, with a bounded count of the matching keys) or
// waiting for their migration. Risk: "*", or a pattern matching more than
// the job's riskyShare of the database (sampled).
func planKeyspace(ctx context.Context, st *spec.Stack, c *goredis.Client, sp *StackPlan, o Options) error {
	r := st.Spec.Redis
	if len(r.KeyspaceJobs) == 0 {
		return nil
	}
	server := redis.Server(r.URL)
	db := 0
	if opt, err := spec.ParseRedis(r.URL); err == nil {
		db = opt.DB
	}
	ids := make([]string, len(r.KeyspaceJobs))
	for i, j := range r.KeyspaceJobs {
		ids[i] = j.ID
	}
	recorded, err := redis.Recorded(ctx, c, ids)
	if err != nil {
		return serverError("redis", server, err, spec.Password(r.URL))
	}
	var dbsize int64 = -1
	for _, j := range r.KeyspaceJobs {
		js := KeyspaceJobStatus{ID: j.ID, Match: j.Delete.Match, DB: db, After: j.AfterName}
		if rec, ok := recorded[j.ID]; ok {
			js.State, js.Deleted = JobDone, rec.Deleted
			if !rec.At.IsZero() {
				at := rec.At
				js.RanAt = &at
			}
			sp.Redis.KeyspaceJobs = append(sp.Redis.KeyspaceJobs, js)
			continue
		}
		after := ""
		if j.AfterName != "" && !migrationApplied(sp, j.AfterVersion) {
			if !migrationPlanned(sp, j.AfterVersion) {
				js.State = JobWaiting
				sp.Redis.KeyspaceJobs = append(sp.Redis.KeyspaceJobs, js)
				continue
			}
			after = ", after migration " + j.AfterName
		}
		js.State = JobPending
		n, err := redis.CountMatching(ctx, c, j.Delete.Match, o.KeyspaceScan)
		if err != nil {
			return serverError("redis", server, err, spec.Password(r.URL))
		}
		js.Keys, js.AtLeast = n.Keys, !n.Complete
		sp.Redis.KeyspaceJobs = append(sp.Redis.KeyspaceJobs, js)
		ch := Change{Stack: st.Metadata.Name, Kind: ResourceKeyspaceJob, Resource: ResourceKeyspaceJob.Address(j.ID),
			Name: j.ID, Action: ActionDelete, Before: countText(js) + " match " + j.Delete.Match + fmt.Sprintf(" in db %d", db),
			After: "deleted (SCAN + UNLINK), recorded in " + redis.JobsKey + after}
		if dbsize < 0 {
			if dbsize, err = c.DBSize(ctx).Result(); err != nil {
				return serverError("redis", server, fmt.Errorf("DBSIZE: %w", err), spec.Password(r.URL))
			}
		}
		var measured string
		ch.Risk, measured, err = keyspaceRisk(ctx, c, j, n, dbsize, db)
		if err != nil {
			return serverError("redis", server, err, spec.Password(r.URL))
		}
		ch.Before += measured
		sp.Changes = append(sp.Changes, ch)
	}
	return nil
}

func countText(js KeyspaceJobStatus) string {
	word := "keys"
	if js.Keys == 1 {
		word = "key"
	}
	if js.AtLeast {
		return fmt.Sprintf("≥ %d %s", js.Keys, word)
	}
	return fmt.Sprintf("%d %s", js.Keys, word)
}

// keyspaceRisk says why deleting j's keys is risky, or "", and the share
// of the keys it measured (for the plan's before). The reason holds no
// count, so that a saved plan is not refused because the cache moved.
func keyspaceRisk(ctx context.Context, c *goredis.Client, j spec.KeyspaceJob, n redis.Count, dbsize int64, db int) (risk, measured string, err error) {
	if j.Delete.Match == "*" {
		return fmt.Sprintf("match \"*\" deletes every key of db %d", db), "", nil
	}
	limit := j.Delete.Share()
	over := fmt.Sprintf("matches more than riskyShare %.0f%% of the keys of db %d", 100*limit, db)
	if n.Complete {
		if dbsize > 0 && float64(n.Keys)/float64(dbsize) > limit {
			return over, fmt.Sprintf(" (%.0f%% of %d)", 100*float64(n.Keys)/float64(dbsize), dbsize), nil
		}
		return "", "", nil
	}
	share, examined, err := redis.Share(ctx, c, j.Delete.Match)
	if err != nil {
		return "", "", err
	}
	if share > limit {
		return over + " (sampled)", fmt.Sprintf(" (about %.0f%% of %d, sampled %d)", 100*share, dbsize, examined), nil
	}
	return "", "", nil
}

func migrationApplied(sp *StackPlan, version int64) bool {
	return sp.Postgres != nil && slices.Contains(sp.Postgres.Applied, version)
}

func migrationPlanned(sp *StackPlan, version int64) bool {
	return slices.ContainsFunc(sp.Changes, func(c Change) bool {
		return c.Kind == ResourceMigration && c.Action == ActionUp && c.Version == version
	})
}

// applyKeyspace runs the pending keyspace jobs after the migrations: a job
// whose `after` migration is not applied by now waits. Each job runs under
// a lease (a Redis lock key of its own, SET NX PX) and checks its record
// under it, so two replicas or a stale plan never run a job twice.
//
// A job whose migration is held back (risky, outside a window) is held with
// it: deferred with a deferred migration, not a failure.
func applyKeyspace(ctx context.Context, st *spec.Stack, c *conns, jobs []Change, held []ChangeResult, o Options) []ChangeResult {
	r := st.Spec.Redis
	server := redis.Server(r.URL)
	fail := func(err error) string {
		return serverError("redis", server, err, spec.Password(r.URL)).Error()
	}
	var applied []int64
	var levelErr error // the level could not be read: jobs with `after` fail, not wait
	if slices.ContainsFunc(r.KeyspaceJobs, func(j spec.KeyspaceJob) bool { return j.AfterName != "" }) && c.pg != nil {
		if m := st.Spec.Postgres.Migrations; m != nil {
			live, err := postgres.EngineFor(m).Observe(ctx, c.pg)
			if err != nil {
				pg := st.Spec.Postgres
				levelErr = serverError("postgres", postgres.Server(pg.URL), err, spec.Password(pg.URL))
			}
			applied = live.Applied
		}
	}
	holder := holderName()
	out := make([]ChangeResult, 0, len(jobs))
	for _, ch := range jobs {
		res := ChangeResult{Change: ch, Status: StatusFailed}
		i := slices.IndexFunc(r.KeyspaceJobs, func(j spec.KeyspaceJob) bool { return j.ID == ch.Name })
		if i < 0 {
			res.Error = "keyspace job " + ch.Name + " is no longer in the spec"
			out = append(out, res)
			continue
		}
		j := r.KeyspaceJobs[i]
		if j.AfterName != "" && levelErr != nil {
			res.Error = "cannot tell whether migration " + j.AfterName + " is applied, so the job did not run: " + levelErr.Error()
			out = append(out, res)
			continue
		}
		if j.AfterName != "" && !slices.Contains(applied, j.AfterVersion) {
			res.Status, res.Error = StatusSkipped, "waits for migration "+j.AfterName+", which is not applied"
			if k := slices.IndexFunc(held, func(h ChangeResult) bool {
				return h.Kind == ResourceMigration && h.Version == j.AfterVersion
			}); k >= 0 {
				res.Status, res.Error = held[k].Status, "waits for migration "+j.AfterName+", "+string(held[k].Status)+": "+held[k].Error
			}
			out = append(out, res)
			continue
		}
		res.Status, res.Error, res.Keys = runJob(ctx, c.redis, j, holder, o, fail)
		out = append(out, res)
	}
	return out
}

func runJob(ctx context.Context, c *goredis.Client, j spec.KeyspaceJob, holder string, o Options, fail func(error) string) (Status, string, *int64) {
	lk, err := lock.Redis(ctx, c, "keyspace-job:"+j.ID, holder, leaseTTL)
	switch {
	case errors.Is(err, lock.ErrHeld):
		return StatusSkipped, "another dbops process is running this job now (lease dbops:lock:keyspace-job:" + j.ID + ")", nil
	case err != nil:
		return StatusFailed, fail(err), nil
	}
	defer lk.Release(ctx)
	// under the lease: a process that ran the job since the plan recorded it
	recs, err := redis.Recorded(ctx, c, []string{j.ID})
	if err != nil {
		return StatusFailed, fail(err), nil
	}
	if rec, ok := recs[j.ID]; ok {
		return StatusSkipped, fmt.Sprintf("already run by another process at %s (%d keys deleted)", rec.At.Format(time.RFC3339), rec.Deleted), nil
	}
	n, err := redis.Delete(ctx, c, j.ID, j.Delete.Match, holder, o.KeyspaceScan.Count, o.now)
	switch {
	case errors.Is(err, redis.ErrRecorded):
		return StatusSkipped, fmt.Sprintf("deleted %d keys, but another process recorded the job meanwhile", n), &n
	case err != nil:
		return StatusFailed, fail(err) + fmt.Sprintf(" (%d keys deleted so far; the job is not recorded and runs again)", n), &n
	}
	return StatusDone, "", &n
}

// holderName names this process in job records and leases.
func holderName() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}
