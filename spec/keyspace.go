package spec

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// DefaultRiskyShare is the share of a Redis database's keys above which a
// keyspace job is risky when the job does not set delete.riskyShare.
const DefaultRiskyShare = 0.5

// KeyspaceJob is a one-shot job on the keys of the stack's Redis database
// (spec.redis.keyspaceJobs): it runs once per ID, ever, and is recorded
// in Redis so replicas and restarts do not run it again.
type KeyspaceJob struct {
	// ID names the job; a recorded ID is in sync.
	ID string `json:"id"`
	// Delete removes the keys matching a SCAN MATCH pattern.
	Delete *KeyspaceDelete `json:"delete"`
	// After names a migration of the stack: the job waits until it is
	// applied (in the same apply, it runs after the migrations).
	After KeyspaceAfter `json:"after,omitempty"`

	// AfterVersion is After resolved by Load: the goose version, or the
	// drizzle journal's when (the value drizzle records as created_at).
	AfterVersion int64 `json:"-"`
	// AfterName is the migration as the plan names it: the goose file or
	// the drizzle tag.
	AfterName string `json:"-"`
}

// KeyspaceDelete deletes the keys matching Match (Redis glob syntax).
type KeyspaceDelete struct {
	Match string `json:"match"`
	// RiskyShare: a pattern matching more than this share of the keys is
	// risky; DefaultRiskyShare when zero.
	RiskyShare float64 `json:"riskyShare,omitempty"`
}

// Share is RiskyShare or its default.
func (d KeyspaceDelete) Share() float64 {
	if d.RiskyShare <= 0 {
		return DefaultRiskyShare
	}
	return d.RiskyShare
}

// KeyspaceAfter is a migration reference as written: a goose version (a
// number), a goose file name with or without .sql, or a drizzle tag.
type KeyspaceAfter string

// UnmarshalJSON accepts a string or a number (YAML reads `after: 21` as one).
func (a *KeyspaceAfter) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		*a = KeyspaceAfter(str)
		return nil
	}
	if numeric.MatchString(s) {
		*a = KeyspaceAfter(s)
		return nil
	}
	return fmt.Errorf("must be a migration version (goose), file name or tag (drizzle)")
}

// keyspaceJobID is the form of a job ID (the schema's pattern): it is a
// field of the record hash and appears in plans and lease keys.
var keyspaceJobID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// checkKeyspaceJobs checks spec.redis.keyspaceJobs: unique IDs, a pattern,
// and an `after` naming a migration of the stack's migration set (checked
// and resolved before this runs).
func checkKeyspaceJobs(s *StackSpec, bad func(field, format string, args ...any)) {
	r := s.Redis
	if r == nil {
		return
	}
	seen := map[string]bool{}
	for i := range r.KeyspaceJobs {
		j := &r.KeyspaceJobs[i]
		f := fmt.Sprintf("spec.redis.keyspaceJobs[%d].", i)
		switch {
		case !keyspaceJobID.MatchString(j.ID):
			bad(f+"id", "%q must start with a letter or digit, then letters, digits, '.', '_' or '-', at most 128", j.ID)
		case seen[j.ID]:
			bad(f+"id", "duplicate keyspace job id %q: a job runs once per id", j.ID)
		}
		seen[j.ID] = true
		switch d := j.Delete; {
		case d == nil:
			bad(f+"delete", "is missing: a keyspace job deletes the keys matching delete.match")
		case d.Match == "":
			bad(f+"delete.match", "is empty: name the keys to delete with a SCAN MATCH pattern, e.g. payment:idem:*")
		case d.RiskyShare < 0 || d.RiskyShare > 1:
			bad(f+"delete.riskyShare", "%v is not a share between 0 and 1", d.RiskyShare)
		}
		if j.After != "" {
			resolveAfter(s, j, f+"after", bad)
		}
	}
}

// resolveAfter finds the migration j.After names in the stack's migration
// set and fills in AfterVersion and AfterName.
func resolveAfter(s *StackSpec, j *KeyspaceJob, field string, bad func(field, format string, args ...any)) {
	var m *Migrations
	if s.Postgres != nil {
		m = s.Postgres.Migrations
	}
	if m == nil || m.Dir == "" {
		bad(field, "names migration %s, but the stack has no spec.postgres.migrations", j.After)
		return
	}
	if m.Path == "" {
		return // the folder itself is refused under spec.postgres.migrations.dir
	}
	ref := string(j.After)
	if m.Format == FormatDrizzle {
		entries, err := ReadJournal(m.Path)
		if err != nil {
			return // named under spec.postgres.migrations.dir
		}
		i := slices.IndexFunc(entries, func(e JournalEntry) bool { return e.Tag == ref })
		if i < 0 {
			bad(field, "%s is not a tag of %s", ref, m.Dir+"/"+JournalPath)
			return
		}
		j.AfterVersion, j.AfterName = entries[i].When, entries[i].Tag
		return
	}
	versions, err := MigrationVersions(m.Path)
	if err != nil {
		return
	}
	if numeric.MatchString(ref) {
		v, err := strconv.ParseInt(ref, 10, 64)
		if err != nil || versions[v] == "" {
			bad(field, "version %s is not in %s", ref, m.Dir)
			return
		}
		j.AfterVersion, j.AfterName = v, versions[v]
		return
	}
	stem := strings.TrimSuffix(ref, ".sql")
	for v, name := range versions {
		if strings.TrimSuffix(name, ".sql") == stem {
			j.AfterVersion, j.AfterName = v, name
			return
		}
	}
	bad(field, "%s is not a migration in %s (write its version or file name)", ref, m.Dir)
}
