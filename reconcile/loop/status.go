package loop

import (
	"strings"
	"time"

	"github.com/amanat/dbops/reconcile"
)

// Resource states reported in /status.
const (
	StateUnknown   = "Unknown"
	StateInSync    = "InSync"
	StateDrifted   = "Drifted"
	StateApplying  = "Applying"
	StateFailed    = "Failed"
	StateSuspended = "Suspended"
)

// StatePendingRestart: nothing left to apply, but Postgres settings wait
// for a server restart (dbops never restarts a server).
const StatePendingRestart = "PendingRestart"

// Reasons of a stack's Ready condition, as in Flux's conditions.
const (
	ReasonSucceeded   = "ReconciliationSucceeded"
	ReasonProgressing = "Progressing"
	ReasonDrift       = "DriftDetected" // driftPolicy: report
	ReasonSuspended   = "Suspended"
	ReasonLocked      = "LockHeldElsewhere"
	ReasonPlanFailed  = "PlanFailed"
	ReasonApplyFail   = "ApplyFailed"
	ReasonDeferred    = "RiskyChangeDeferred" // waits for a maintenance window
	// ReasonStalled: retrying as things are cannot help, so there is no
	// backoff. Either a permanent plan error (the spec contradicts the
	// servers: fix the repository), tried again only when a new revision is
	// in force; or a Redis value the server stores differently (adjusted.go),
	// not re-sent until the spec or the server changes.
	ReasonStalled = "Stalled"
)

// Status is what /status reports.
type Status struct {
	// Revision is the revision in force: the last one that loaded and validated.
	Revision *RevisionStatus `json:"revision"`
	// Rejected is the newest revision that failed to load, validate or verify.
	Rejected   *Rejection `json:"rejected,omitempty"`
	LastFetch  time.Time  `json:"lastFetch"`
	FetchError string     `json:"fetchError,omitempty"`
	// Shard is this replica's share of the stacks; Stacks lists only those.
	Shard  ShardStatus   `json:"shard"`
	Stacks []StackStatus `json:"stacks"`
}

// ShardStatus says which stacks this replica owns (see README "Sharding").
type ShardStatus struct {
	Index int `json:"index"`
	Count int `json:"count"`
	// Owned names the stacks of the revision in force this replica owns;
	// Total counts the revision's stacks over all shards.
	Owned []string `json:"owned"`
	Total int      `json:"total"`
}

// RevisionStatus is a revision in force.
type RevisionStatus struct {
	ID       string    `json:"id"`
	LoadedAt time.Time `json:"loadedAt"`
}

// Rejection is a revision that is not applied, and why.
type Rejection struct {
	ID     string    `json:"id"`
	At     time.Time `json:"at"`
	Errors []string  `json:"errors"`
}

// StackStatus is one stack's state after its last cycle.
type StackStatus struct {
	Name        string    `json:"name"`
	Suspended   bool      `json:"suspended"`
	DriftPolicy string    `json:"driftPolicy"`
	LastCycle   time.Time `json:"lastCycle"`
	LastSuccess time.Time `json:"lastSuccess"`
	Duration    string    `json:"duration"`
	// DurationSeconds is Duration as a number, for scripts.
	DurationSeconds float64          `json:"durationSeconds"`
	Resources       []ResourceStatus `json:"resources"`
	Conditions      []Condition      `json:"conditions"`
	// LastAttemptedRevision is the revision of the last cycle;
	// LastAppliedRevision the last one the stack fully reached (in sync
	// after the cycle). They differ while a revision fails to apply.
	LastAttemptedRevision string `json:"lastAttemptedRevision,omitempty"`
	LastAppliedRevision   string `json:"lastAppliedRevision,omitempty"`
	// RetryAt is when a failing stack is tried again (exponential backoff).
	RetryAt *time.Time `json:"retryAt,omitempty"`
	// Backups are the stack's backup jobs: last result and next run.
	Backups []BackupStatus `json:"backups,omitempty"`
	// SchemaDrift is the last schema drift check (spec.postgres.drift).
	SchemaDrift *SchemaDriftStatus `json:"schemaDrift,omitempty"`
}

// ResourceStatus is the state of one managed thing of a stack.
type ResourceStatus struct {
	Resource string             `json:"resource"` // "postgres" or "redis"
	State    string             `json:"state"`
	Error    string             `json:"error,omitempty"`
	Changes  []reconcile.Change `json:"changes,omitempty"` // drift found in the last cycle
	// PendingRestart lists the Postgres settings applied but waiting for a
	// server restart (postgres only).
	PendingRestart []string `json:"pendingRestart,omitempty"`
}

// Condition is a Kubernetes-style condition with a machine-readable reason.
type Condition struct {
	Type    string    `json:"type"`
	Status  string    `json:"status"` // "True" or "False"
	Reason  string    `json:"reason"`
	Message string    `json:"message,omitempty"`
	Since   time.Time `json:"lastTransitionTime"`
}

// resources derives per-resource states from a stack plan. state is the
// state of drifted resources (Drifted, Applying or Suspended).
func resources(sp *reconcile.StackPlan, drifted string) []ResourceStatus {
	var out []ResourceStatus
	add := func(name, planErr string) {
		rs := ResourceStatus{Resource: name, State: StateInSync, Error: planErr}
		for _, c := range sp.Changes {
			if c.Kind.Server() == name {
				rs.Changes = append(rs.Changes, c)
			}
		}
		switch {
		case planErr != "":
			rs.State = StateFailed
		case len(rs.Changes) > 0:
			rs.State = drifted
		}
		out = append(out, rs)
	}
	if sp.Postgres != nil {
		add("postgres", sp.Postgres.Error)
		if p := sp.Postgres.PendingRestart; len(p) > 0 {
			rs := &out[len(out)-1]
			rs.PendingRestart = p
			if rs.State == StateInSync {
				rs.State = StatePendingRestart
			}
		}
	}
	if sp.Redis != nil {
		add("redis", sp.Redis.Error)
	}
	if len(out) == 0 && len(sp.Errors) > 0 { // the servers could not even be opened
		out = append(out, ResourceStatus{Resource: "stack", State: StateFailed, Error: sp.Errors[0].Error()})
	}
	return out
}

// inSync is the message of a cycle that found nothing to apply: "in sync",
// unless settings wait for a restart, which is never called in sync.
func inSync(sp *reconcile.StackPlan) string {
	if sp.Postgres != nil && len(sp.Postgres.PendingRestart) > 0 {
		return "nothing to apply; pending a server restart (dbops never restarts it): " + strings.Join(sp.Postgres.PendingRestart, ", ")
	}
	return "in sync"
}
