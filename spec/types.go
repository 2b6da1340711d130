// Package spec defines the desired state of a database stack as written in
// YAML, and loads, defaults and validates it. It never talks to a server.
package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// APIVersion and Kind identify a dbops Stack document.
const (
	APIVersion = "dbops/v1"
	Kind       = "Stack"
)

// DefaultMigrationTable is goose's version table, used when a stack names none.
const DefaultMigrationTable = "goose_db_version"

// Stack is one document: the desired state of one Postgres + Redis pair.
type Stack struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Metadata   Metadata  `json:"metadata"`
	Spec       StackSpec `json:"spec"`

	// File is the YAML file the stack was read from, as shown in messages.
	File string `json:"-"`
}

// Metadata names a stack.
type Metadata struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// StackSpec is what the stack's servers should look like.
type StackSpec struct {
	Postgres *Postgres `json:"postgres,omitempty"`
	Redis    *Redis    `json:"redis,omitempty"`

	// Suspend makes `dbops run` observe and report the stack, never apply.
	Suspend bool `json:"suspend,omitempty"`
	// DriftPolicy says what `dbops run` does with drift: correct it
	// (default) or only report it.
	DriftPolicy DriftPolicy `json:"driftPolicy,omitempty"`

	// Backups are scheduled backup jobs with retention.
	Backups []Backup `json:"backups,omitempty"`
	// MaintenanceWindows are when risky changes may be applied without
	// --allow-risky; outside them risky changes are deferred.
	MaintenanceWindows Windows `json:"maintenanceWindows,omitempty"`

	// BackupBeforeMigrate names a postgres backup job that apply takes and
	// verifies before running any migration; it refuses to migrate if that
	// backup fails.
	BackupBeforeMigrate string `json:"backupBeforeMigrate,omitempty"`
}

// DriftPolicy is what the reconcile loop does when live state drifts.
type DriftPolicy string

// Drift policies.
const (
	DriftCorrect DriftPolicy = "correct"
	DriftReport  DriftPolicy = "report"
)

// Postgres is the desired state of one PostgreSQL database.
type Postgres struct {
	// URL is a postgres:// URL; ${VAR} is expanded from the environment.
	URL        string      `json:"url"`
	Migrations *Migrations `json:"migrations,omitempty"`
	// Drift configures schema drift detection (drift.go).
	Drift *Drift `json:"drift,omitempty"`

	// ServerState: extensions, settings, resetSettings (pgserver.go).
	ServerState
}

// Migrations is the migration level a database should be at.
type Migrations struct {
	// Dir holds goose SQL migrations or drizzle-kit output, relative to the YAML file.
	Dir string `json:"dir"`
	// Format is goose or drizzle; Load detects it when empty (migrations.go).
	Format string `json:"format,omitempty"`
	// Target is "latest" or a version (goose) or tag (drizzle) present in Dir.
	Target Target `json:"target,omitempty"`
	// AllowDown permits migrating down when Target is below the live version.
	AllowDown bool `json:"allowDown,omitempty"`
	// Table is goose's version table, or drizzle's migrations table.
	Table string `json:"table,omitempty"`
	// Schema is drizzle's migrationsSchema (drizzle only).
	Schema string `json:"schema,omitempty"`
	// Baseline is the migration an existing database without a version
	// table is at: apply records it and those before it as applied.
	Baseline *MigrationRef `json:"baseline,omitempty"`

	// MigrationSession: lockTimeout, statementTimeout (migrations_session.go).
	MigrationSession

	// Path is Dir resolved to an absolute path by Load.
	Path string `json:"-"`
}

// Target is a pinned migration version (goose) or tag (drizzle); the zero
// value means the latest migration in the folder.
type Target struct {
	Pinned  bool
	Version int64  // when Pinned; 0 means no migration applied
	Tag     string // when Pinned by a drizzle tag
}

// String returns "latest", the tag or the version number.
func (t Target) String() string {
	switch {
	case !t.Pinned:
		return "latest"
	case t.Tag != "":
		return t.Tag
	}
	return strconv.FormatInt(t.Version, 10)
}

// UnmarshalJSON accepts "latest", a number, or a number in a string. The
// number is read from its text, so a value beyond int64 is an error, not a
// rounded float.
func (t *Target) UnmarshalJSON(b []byte) error {
	num, str, err := jsonRef(b)
	switch {
	case err != nil:
		return err
	case num != nil:
		*t = Target{Pinned: true, Version: *num}
	case str != nil && (*str == "latest" || *str == ""):
		*t = Target{}
	case str != nil && numeric.MatchString(*str):
		// A number is a goose version (parseVersionLiteral names the int64
		// limit); anything else is a drizzle tag. The caller names the field.
		n, err := parseVersionLiteral(*str)
		if err != nil {
			return err
		}
		*t = Target{Pinned: true, Version: n}
	case str != nil:
		ref, err := parseRef(*str)
		if err != nil {
			return err
		}
		*t = Target{Pinned: true, Version: ref.Version, Tag: ref.Tag}
	default:
		return fmt.Errorf("must be \"latest\" or a migration version")
	}
	return nil
}

// MarshalJSON writes "latest" or the version number.
func (t Target) MarshalJSON() ([]byte, error) {
	if !t.Pinned {
		return []byte(`"latest"`), nil
	}
	if t.Tag != "" {
		return json.Marshal(t.Tag)
	}
	return []byte(strconv.FormatInt(t.Version, 10)), nil
}

// Redis is the desired state of one Redis server.
type Redis struct {
	// URL is a redis:// or rediss:// URL; ${VAR} is expanded from the environment.
	URL string `json:"url"`
	// Config lists the CONFIG parameters dbops manages; others are left alone.
	Config map[string]RedisValue `json:"config,omitempty"`
	// KeyspaceJobs are one-shot jobs on the keys of the URL's database
	// (keyspace.go).
	KeyspaceJobs []KeyspaceJob `json:"keyspaceJobs,omitempty"`
}

// RedisValue is a CONFIG value as written in YAML. YAML may read it as a
// string, a number or a boolean (appendonly: yes); all become Redis' text.
type RedisValue string

// UnmarshalJSON accepts a string, a number or a boolean.
func (v *RedisValue) UnmarshalJSON(b []byte) error {
	s, err := scalarText(b, "yes", "no", "must be a string, a number or yes/no")
	*v = RedisValue(s)
	return err
}

// scalarText is the text of a YAML scalar read as JSON: a string as is, a
// number as written, a boolean as yes or no; anything else is refused
// with refusal.
func scalarText(b []byte, yes, no, refusal string) (string, error) {
	s := strings.TrimSpace(string(b))
	switch {
	case s == "true":
		return yes, nil
	case s == "false":
		return no, nil
	case strings.HasPrefix(s, `"`):
		var str string
		err := json.Unmarshal(b, &str)
		return str, err
	case s == "null" || strings.HasPrefix(s, "{") || strings.HasPrefix(s, "["):
		return "", errors.New(refusal)
	}
	return s, nil
}
