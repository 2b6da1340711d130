package reconcile

// Kind is what a Change changes. Its JSON form is the plain string.
type Kind string

// Kinds of a Change.
const (
	ResourceRedisConfig Kind = "redis.config"
	ResourceMigration   Kind = "postgres.migration"
	// ResourceChecksums records the checksums of applied migrations met
	// for the first time ("recorded at adoption").
	ResourceChecksums Kind = "postgres.checksums"
	ResourceBackup    Kind = "backup"       // a due backup to take
	ResourcePrune     Kind = "backup.prune" // a backup file retention deletes
)

// ResourceKeyspaceJob is a one-shot Redis keyspace job (keyspace.go).
const ResourceKeyspaceJob Kind = "redis.keyspace"

// Kinds of the Postgres server state (issue 15: extensions and settings).
const (
	ResourceExtension Kind = "postgres.extension" // CREATE / ALTER ... UPDATE TO / DROP EXTENSION
	ResourceSetting   Kind = "postgres.setting"   // ALTER SYSTEM SET / RESET
)

// Server is the managed thing a kind of change belongs to: "postgres",
// "redis" or "backup" (the names of the loop's /status resources).
func (k Kind) Server() string {
	switch k {
	case ResourceMigration, ResourceChecksums, ResourceExtension, ResourceSetting:
		return "postgres"
	case ResourceRedisConfig, ResourceKeyspaceJob:
		return "redis"
	case ResourceBackup, ResourcePrune:
		return "backup"
	}
	return ""
}

// Action is what a Change does.
type Action string

// Actions of a Change.
const (
	ActionUpdate Action = "update"
	ActionUp     Action = "up"
	ActionDown   Action = "down"
	// ActionBaseline records migrations as applied without running them.
	ActionBaseline Action = "baseline"
	ActionRecord   Action = "record"
	ActionBackup   Action = "backup"
	ActionDelete   Action = "delete"
)

// Actions of extensions and settings.
const (
	ActionCreate Action = "create" // CREATE EXTENSION
	ActionDrop   Action = "drop"   // DROP EXTENSION
	ActionReset  Action = "reset"  // ALTER SYSTEM RESET
)

// Status is the outcome of an applied Change.
type Status string

// Outcomes of an applied Change.
const (
	StatusDone    Status = "done"
	StatusFailed  Status = "failed"
	StatusSkipped Status = "skipped"
	// StatusDeferred: risky, outside the stack's maintenance windows; it is
	// applied when a window opens. Not a failure.
	StatusDeferred Status = "deferred"
	// StatusRefused: risky, and the stack has no maintenance window; it
	// needs --allow-risky. A failure.
	StatusRefused Status = "refused"
)

// Address is the Resource of a change of kind k to name, e.g.
// redis.config.maxmemory.
func (k Kind) Address(name string) string { return string(k) + "." + name }
