// Package loop runs the continuous reconcile of `dbops run`: it fetches the
// desired state from a source, keeps the last revision that validated in
// force, and reconciles every stack on each change and each interval
// through the same Plan and Apply as the CLI.
package loop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/backup"
	"github.com/amanat/dbops/reconcile/drift"
	"github.com/amanat/dbops/reconcile/notify"
	"github.com/amanat/dbops/reconcile/shard"
	"github.com/amanat/dbops/reconcile/source"
	"github.com/amanat/dbops/spec"
)

// Source is where revisions of the desired state come from.
type Source interface {
	Fetch(ctx context.Context) (source.Revision, error)
	Changed() <-chan struct{}
	Release(keep ...string)
}

// Options configure a Loop. Zero values get the defaults in brackets.
type Options struct {
	Source      Source
	Interval    time.Duration // between cycles [1m]
	Concurrency int           // stacks reconciled at once [4]
	Reconcile   reconcile.Options
	Logger      *slog.Logger // [discard]
	Metrics     *Metrics     // [NewMetrics()]
	// Holder names this process in Redis stack locks [hostname-pid].
	Holder string
	// RetryBase and RetryMax bound the backoff of a failing stack [2s, 5m].
	RetryBase, RetryMax time.Duration
	// LockTTL is the expiry of Redis stack locks [2m].
	LockTTL time.Duration
	// BackupConcurrency bounds backups running at once [2].
	BackupConcurrency int
	// Notify receives the loop's events for the Notification documents of
	// the revision in force [none]. Its deliveries never block a cycle.
	Notify *notify.Dispatcher
	// RepoURL is the repository's URL (--repo): github and gitlab
	// Notifications take their repository or project from it.
	RepoURL string
	// Shard is this replica's share of the stacks: it reconciles and backs
	// up only those shard.Of maps to its index [all of them].
	Shard shard.Spec
}

// Loop is one `dbops run` process.
type Loop struct {
	o       Options
	trigger chan struct{}
	sem     chan struct{}
	wg      sync.WaitGroup

	// snapMu orders snapshot deletion after a fetch's adoption: without it
	// a stack cycle ending between Source.Fetch and l.current being set
	// deletes the snapshot just fetched (seen as "spec path ...: no such file").
	snapMu   sync.Mutex
	fetches  int    // Source.Fetch calls, under snapMu
	released string // under snapMu: fetches and keep set of the last Release (see releaseSnapshots)
	mu       sync.Mutex
	runCtx   context.Context // set by Run: retries live only as long as it
	current  *revision
	rejected *Rejection
	lastErr  string
	lastTry  time.Time
	stacks   map[string]*stackState
	// runningRevs counts running stack cycles per revision (startRun).
	runningRevs map[string]int

	sched         *backup.Scheduler
	seeded        map[string]bool
	backupSem     chan struct{}
	backupResults map[string]*BackupResult
	drillState    *drillState
	schema        *schemaDrift // schema drift checks (drift.go)
}

type revision struct {
	source.Revision
	stacks   []spec.Stack // the stacks of this replica's shard
	total    int          // stacks in the revision, all shards
	loadedAt time.Time
	sums     map[string]string // stack name -> fingerprint of its definition
	changed  map[string]bool   // stacks whose fingerprint differs from the previous revision's
}

// New returns a loop; Run starts it.
func New(o Options) *Loop {
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 2 * time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Minute
	}
	if o.LockTTL <= 0 {
		o.LockTTL = 2 * time.Minute
	}
	if o.BackupConcurrency <= 0 {
		o.BackupConcurrency = 2
	}
	if o.Shard.Count <= 0 {
		o.Shard = shard.Spec{Index: 0, Count: 1}
	}
	o.Metrics.shardInfo.WithLabelValues(strconv.Itoa(o.Shard.Index), strconv.Itoa(o.Shard.Count)).Set(1)
	o.Reconcile.SkipBackups = true // scheduled by the loop itself
	o.Reconcile.SkipDrift = true   // so is schema drift (drift.go)
	if o.Reconcile.DriftCache == nil {
		o.Reconcile.DriftCache = &drift.MemCache{}
	}
	return &Loop{
		o:             o,
		trigger:       make(chan struct{}, 1),
		sem:           make(chan struct{}, o.Concurrency),
		stacks:        map[string]*stackState{},
		runningRevs:   map[string]int{},
		sched:         backup.NewScheduler(),
		seeded:        map[string]bool{},
		backupSem:     make(chan struct{}, o.BackupConcurrency),
		backupResults: map[string]*BackupResult{},
		drillState:    newDrillState(),
		schema:        newSchemaDrift(o.Metrics),
	}
}

// Trigger asks for a fetch and a cycle now (the webhook calls it).
func (l *Loop) Trigger() {
	select {
	case l.trigger <- struct{}{}:
	default:
	}
}

// Run reconciles until ctx is cancelled, then lets the stacks under way stop
// cleanly (see reconcile.Options.Grace), releases their locks and returns.
func (l *Loop) Run(ctx context.Context) error {
	l.mu.Lock()
	l.runCtx = ctx
	l.mu.Unlock()
	tick := time.NewTicker(l.o.Interval)
	defer tick.Stop()
	for {
		l.Cycle(ctx)
		l.o.Logger.Debug("waiting")
		select {
		case <-ctx.Done():
			l.wg.Wait()
			return nil
		case <-tick.C:
			l.o.Logger.Debug("cycle", "reason", "interval")
		case <-l.trigger:
			l.o.Logger.Debug("cycle", "reason", "webhook")
		case <-l.o.Source.Changed():
			l.o.Logger.Debug("cycle", "reason", "source changed")
		}
	}
}

// Cycle fetches the source and starts reconciling every stack of the
// revision in force that is not already being reconciled or backing off.
// It does not wait for them; Wait does.
func (l *Loop) Cycle(ctx context.Context) {
	l.fetch(ctx)
	l.mu.Lock()
	cur := l.current
	l.mu.Unlock()
	if cur == nil || ctx.Err() != nil {
		return
	}
	// Stacks a new revision changed go first, and the first Concurrency of
	// them get their slots before any other stack is queued: with a large
	// fleet a commit is applied without waiting for every unchanged stack's
	// drift check.
	var first []<-chan struct{}
	for i := range cur.stacks {
		if cur.changed[cur.stacks[i].Metadata.Name] {
			if started := l.dispatch(ctx, cur.ID, &cur.stacks[i], false); started != nil && len(first) < l.o.Concurrency {
				first = append(first, started)
			}
		}
	}
	for _, started := range first {
		<-started // closed on a slot or when ctx ends
	}
	for i := range cur.stacks {
		if !cur.changed[cur.stacks[i].Metadata.Name] {
			l.dispatch(ctx, cur.ID, &cur.stacks[i], false)
		}
	}
	l.backups(ctx, cur)
	l.drills(ctx, cur, time.Now())
	l.schemaDriftChecks(ctx, cur, time.Now())
}

// Wait blocks until no stack is being reconciled.
func (l *Loop) Wait() { l.wg.Wait() }

// fetch brings in the source's head revision and loads it when it is new.
// A revision that fails to fetch-verify, load or validate is rejected and the
// one in force stays.
func (l *Loop) fetch(ctx context.Context) {
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	l.fetches++ // a fetch may add a snapshot: the next release must look
	rev, err := l.o.Source.Fetch(ctx)
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastTry = now
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		l.o.Metrics.fetchFailures.Inc()
		// Each event is logged once: a failure like the last one (the same
		// unsigned commit, the same unreachable remote) only at debug level.
		seen := err.Error() == l.lastErr
		l.lastErr = err.Error()
		if errors.Is(err, source.ErrUnverified) {
			if l.rejected != nil && rev.ID != "" && l.rejected.ID == rev.ID {
				return
			}
			l.reject(rev.ID, []string{err.Error()}, now)
			return
		}
		if seen {
			l.o.Logger.Debug("fetch failed again; the revision in force stays", "err", err)
			return
		}
		l.o.Logger.Error("fetch failed; the revision in force stays", "err", err)
		return
	}
	if l.lastErr != "" {
		l.o.Logger.Info("fetch succeeded again", "revision", rev.ID)
	}
	l.lastErr = ""
	l.o.Logger.Debug("fetched", "revision", rev.ID)
	if l.current != nil && rev.ID == l.current.ID {
		return
	}
	if l.rejected != nil && rev.ID == l.rejected.ID {
		return // already reported
	}
	res, err := spec.Load([]string{rev.Path}, spec.Options{Root: rev.Root, RepoURL: l.o.RepoURL})
	if err != nil {
		var msgs []string
		var list spec.ErrorList
		if errors.As(err, &list) {
			for _, fe := range list {
				msgs = append(msgs, fe.Error())
			}
		} else {
			msgs = []string{err.Error()}
		}
		// Files are named by their path in the repository, not in the
		// cache folder the revision is checked out to.
		for i, m := range msgs {
			msgs[i] = strings.ReplaceAll(m, rev.Root+string(filepath.Separator), "")
		}
		l.reject(rev.ID, msgs, now)
		return
	}
	prev := ""
	if l.current != nil {
		prev = l.current.ID
		l.o.Metrics.revision.DeleteLabelValues(prev)
	}
	// The whole revision is validated above, so every replica accepts or
	// rejects the same revisions; each then keeps only its own stacks.
	owned := l.own(res.Stacks)
	next := &revision{Revision: rev, stacks: owned, total: len(res.Stacks), loadedAt: now,
		sums: map[string]string{}, changed: map[string]bool{}}
	for _, st := range owned {
		sum := fingerprint(&st)
		next.sums[st.Metadata.Name] = sum
		if l.current != nil && l.current.sums[st.Metadata.Name] != sum {
			next.changed[st.Metadata.Name] = true
		}
	}
	l.current = next
	if l.o.Notify != nil {
		l.o.Notify.Configure(res.Notifications)
	}
	l.o.Metrics.revision.WithLabelValues(rev.ID).Set(1)
	if l.rejected != nil {
		l.o.Metrics.rejected.DeleteLabelValues(l.rejected.ID)
		l.rejected = nil
	}
	for _, w := range res.Warnings {
		l.o.Logger.Warn("spec warning", "revision", rev.ID, "warning", w.Error())
	}
	l.o.Logger.Info("revision in force", "revision", rev.ID, "previous", prev, "stacks", len(res.Stacks),
		"shard", l.o.Shard.Index, "shards", l.o.Shard.Count, "owned", len(owned))
	l.forgetRemovedStacks(owned)
	go l.releaseSnapshots() // it takes l.mu, held here
}

func (l *Loop) reject(id string, msgs []string, now time.Time) {
	if l.rejected != nil {
		l.o.Metrics.rejected.DeleteLabelValues(l.rejected.ID)
	}
	l.rejected = &Rejection{ID: id, At: now, Errors: msgs}
	if id != "" {
		l.o.Metrics.rejected.WithLabelValues(id).Set(1)
	}
	inForce := ""
	if l.current != nil {
		inForce = l.current.ID
	}
	for _, m := range msgs {
		l.o.Logger.Error("revision rejected; nothing of it is applied", "revision", id, "in_force", inForce, "err", m)
	}
	// reject runs once per revision: one notification per rejected commit.
	l.o.Notify.Publish(notify.Event{Event: spec.EventRejected, Revision: id, Time: now,
		Summary: fmt.Sprintf("revision rejected; %s stays in force", orNone(inForce)), Errors: maskAll(msgs)})
}

// own keeps the stacks of this replica's shard and updates the shard
// metrics. Called with l.mu held.
func (l *Loop) own(all []spec.Stack) []spec.Stack {
	var owned []spec.Stack
	for _, st := range all {
		if l.o.Shard.Owns(st.Metadata.Name) {
			owned = append(owned, st)
		}
	}
	m := l.o.Metrics
	m.shardStacks.WithLabelValues("owned").Set(float64(len(owned)))
	m.shardStacks.WithLabelValues("total").Set(float64(len(all)))
	return owned
}

// forgetRemovedStacks drops the state and metrics of stacks no longer in
// the spec, or no longer in this replica's shard; dbops leaves their
// servers as they are.
func (l *Loop) forgetRemovedStacks(stacks []spec.Stack) {
	keep := map[string]bool{}
	for i := range stacks {
		keep[stacks[i].Metadata.Name] = true
		l.o.Metrics.shardStack.WithLabelValues(stacks[i].Metadata.Name).Set(1)
		l.o.Metrics.initStack(&stacks[i])
	}
	for name, s := range l.stacks {
		if !keep[name] && !s.running {
			delete(l.stacks, name)
			l.o.Metrics.forget(name)
		}
	}
}

// backoff is the capped exponential delay with jitter after n failures.
func (l *Loop) backoff(n int) time.Duration {
	d := l.o.RetryBase << min(n-1, 20)
	if d <= 0 || d > l.o.RetryMax {
		d = l.o.RetryMax
	}
	return d/2 + rand.N(d/2+1) // "equal jitter": between d/2 and d
}

// fingerprint identifies a stack's definition: its spec and the names of
// its migration files (the snapshot folder itself differs per revision).
func fingerprint(st *spec.Stack) string {
	h := sha256.New()
	json.NewEncoder(h).Encode(st.Spec)
	if pg := st.Spec.Postgres; pg != nil && pg.Migrations != nil {
		if entries, err := os.ReadDir(pg.Migrations.Path); err == nil {
			for _, e := range entries {
				fmt.Fprintf(h, "%s\n", e.Name())
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
