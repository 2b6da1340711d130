// Package backup takes, verifies, lists, prunes and restores the backups a
// stack declares: pg_dump archives of a PostgreSQL database and RDB
// snapshots fetched from a Redis server over the replication protocol.
//
// Every backup is a data file and a JSON manifest beside it. Files are
// written to a temporary name, fsynced and renamed, so a crash never leaves
// a file that looks complete. Only a backup whose manifest exists, whose
// size and checksum match and whose verification passed is counted towards
// retention. The package does no spec parsing and no CLI work.
package backup

import (
	"io"
	"log/slog"
	"time"
	_ "time/tzdata" // every IANA zone, even in slim images

	"github.com/jackc/pgx/v5"

	"github.com/amanat/dbops/spec"
)

// Sources and verification methods.
const (
	SourcePostgres = "postgres"
	SourceRedis    = "redis"

	VerifyRead    = "read"
	VerifyRestore = "restore"
	VerifyNone    = "none" // recorded when Options.NoVerify is set; never counted

	// ManifestFormat is the formatVersion of every manifest written.
	ManifestFormat = "dbops.backup/v1"
	// DefaultMigrationTable is goose's version table.
	DefaultMigrationTable = "goose_db_version"
)

// Job is one backup job of a stack, as declared in its spec.
type Job struct {
	Stack       string   `json:"stack"`
	Name        string   `json:"name"`
	Source      string   `json:"source"`      // "postgres" | "redis"
	Schedule    Schedule `json:"schedule"`    // parsed by spec, in the job's time zone
	Destination string   `json:"destination"` // a local folder or s3://bucket/prefix
	// S3 holds an s3:// destination's settings; its credentials are never
	// marshalled (see spec.S3).
	S3 *spec.S3 `json:"s3,omitempty"`
	// Recipients are the age public keys backups are encrypted for; none:
	// not encrypted.
	Recipients []string  `json:"recipients,omitempty"`
	Retention  Retention `json:"retention"`
	Verify     string    `json:"verify,omitempty"` // "read" (default) | "restore"
	// Connection URLs: secrets, never printed (see spec.Redact).
	PostgresURL string `json:"-"`
	RedisURL    string `json:"-"`
	// Drill is the job's restore drill; nil: none.
	Drill *spec.Drill `json:"drill,omitempty"`
	// MigrationTable is goose's version table; default goose_db_version.
	MigrationTable string `json:"migrationTable,omitempty"`
	// MigrationFormat is goose (default) or drizzle; for drizzle,
	// MigrationTable is the quoted "schema"."table" and the version
	// recorded is the largest created_at (the last journal when applied).
	MigrationFormat string `json:"migrationFormat,omitempty"`
}

// Retention is restic's forget policy, as the spec writes it. Zero
// disables a rule; spec.Unlimited (-1) keeps every period that has a backup.
type Retention = spec.Retention

func emptyRetention(r Retention) bool { return r == Retention{} }

// NewJob is a stack's backup job as this package runs it: the spec's parsed
// values and the stack's connection URLs.
func NewJob(st *spec.Stack, b spec.Backup) Job {
	j := Job{
		Stack: st.Metadata.Name, Name: b.Name, Source: b.Source, Schedule: b.Schedule,
		Destination: b.Destination, Verify: b.Verify, Retention: b.Retention, S3: b.S3, Drill: b.Drill,
	}
	if b.Encryption != nil {
		j.Recipients = b.Encryption.Recipients
	}
	if pg := st.Spec.Postgres; pg != nil {
		j.PostgresURL = pg.URL
		if m := pg.Migrations; m != nil {
			j.MigrationTable, j.MigrationFormat = m.Table, m.Format
			if m.Format == spec.FormatDrizzle {
				j.MigrationTable = pgx.Identifier{m.Schema, m.Table}.Sanitize()
			}
		}
	}
	if r := st.Spec.Redis; r != nil {
		j.RedisURL = r.URL
	}
	return j
}

// Manifest describes one backup; it is stored as JSON beside the data file.
type Manifest struct {
	FormatVersion string    `json:"formatVersion"`
	Stack         string    `json:"stack"`
	Job           string    `json:"job"`
	Source        string    `json:"source"`
	File          string    `json:"file"` // base name, in the manifest's folder
	StartedAt     time.Time `json:"startedAt"`
	FinishedAt    time.Time `json:"finishedAt"`
	Size          int64     `json:"size"`   // of the stored file or object (the ciphertext when encrypted)
	SHA256        string    `json:"sha256"` // of the stored bytes: checkable without the key
	// Encryption says how the data is encrypted; nil when it is not.
	Encryption *Encryption `json:"encryption,omitempty"`
	// PlainSize is the size before encryption (encrypted backups only).
	PlainSize int64 `json:"plainSize,omitempty"`
	// ETag is the object store's ETag of an s3:// backup, compared when
	// listing (a replaced or damaged object changes it).
	ETag          string `json:"etag,omitempty"`
	Server        string `json:"server"` // host:port[/db], no credentials
	ServerVersion string `json:"serverVersion"`
	ClientVersion string `json:"clientVersion,omitempty"` // pg_dump --version
	// MigrationVersion is goose's version when the dump's snapshot was taken
	// (for a drizzle stack, the last created_at in its migrations table).
	MigrationVersion *int64 `json:"migrationVersion,omitempty"`
	// RowCounts per table ("schema.table") in the dumped snapshot; recorded
	// for verify: restore, and compared after a restore.
	RowCounts map[string]int64 `json:"rowCounts,omitempty"`
	// RDBChecksum is the server's rdbchecksum setting ("yes"/"no"; Redis).
	RDBChecksum  string       `json:"rdbChecksum,omitempty"`
	Verification Verification `json:"verification"`
}

// Encryption records what decrypting a backup needs, except the key.
type Encryption struct {
	Method     string   `json:"method"`     // "age"
	Recipients []string `json:"recipients"` // age public keys it was encrypted for
}

// Duration is the time the backup took, verification excluded.
func (m Manifest) Duration() time.Duration { return m.FinishedAt.Sub(m.StartedAt) }

// Verification is the result of Verify, recorded in the manifest.
type Verification struct {
	Method string    `json:"method"` // read | restore | none
	OK     bool      `json:"ok"`
	Error  string    `json:"error,omitempty"`
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at"`
}

// Options are the knobs of Run, Verify and Restore. The zero value works.
type Options struct {
	PgDumpPath    string           // default: pg_dump on PATH
	PgRestorePath string           // default: pg_restore on PATH
	Now           func() time.Time // default time.Now
	Logger        *slog.Logger     // default: discard
	// ConnectTimeout bounds each connection to a server;
	// default spec.DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// NoVerify skips verification in Run (benchmarks); such a backup is
	// recorded with method "none" and never counted.
	NoVerify bool
	// IdentityFile is an age identity file that decrypts encrypted
	// backups; default $DBOPS_AGE_IDENTITY_FILE, else the identity itself
	// in $DBOPS_AGE_IDENTITY.
	IdentityFile string
	// Written, when set, hears the bytes written to the backup file so
	// far, after each write (progress on a terminal).
	Written func(total int64)
}

// watch reports what is written through w to o.Written.
func (o Options) watch(w io.Writer) io.Writer {
	if o.Written == nil {
		return w
	}
	return &watched{w: w, report: o.Written}
}

type watched struct {
	w      io.Writer
	n      int64
	report func(int64)
}

func (c *watched) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.report(c.n)
	return n, err
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o Options) log() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (o Options) connectTimeout() time.Duration {
	if o.ConnectTimeout > 0 {
		return o.ConnectTimeout
	}
	return spec.DefaultConnectTimeout
}

func (o Options) pgDump() string    { return orDefault(o.PgDumpPath, "pg_dump") }
func (o Options) pgRestore() string { return orDefault(o.PgRestorePath, "pg_restore") }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (j Job) verifyMethod() string   { return orDefault(j.Verify, VerifyRead) }
func (j Job) migrationTable() string { return orDefault(j.MigrationTable, DefaultMigrationTable) }

// Location is the job's time zone, the zone of its schedule: pass it to Prune.
func (j Job) Location() *time.Location { return j.Schedule.Location() }
