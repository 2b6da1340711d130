package spec

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// DefaultLockTimeout is the lock_timeout migrations run with when a stack
// sets none: long enough for a busy table, short enough that the queries
// queued behind a waiting ALTER TABLE do not pile up into an outage.
const DefaultLockTimeout = 5 * time.Second

// DefaultConnectTimeout bounds each connection dbops makes to a server
// unless --connect-timeout says otherwise: the one place of that default
// for plan, apply, backups, locks and dbops run.
const DefaultConnectTimeout = 5 * time.Second

// MigrationSession is the session migrations run in: PostgreSQL's
// lock_timeout and statement_timeout, per stack (migrations.lockTimeout,
// migrations.statementTimeout) and per file (-- dbops:lock-timeout 30s).
type MigrationSession struct {
	// LockTimeout is lock_timeout as a Go duration (5s, 500ms); "0" turns
	// it off. Default 5s.
	LockTimeout string `json:"lockTimeout,omitempty"`
	// StatementTimeout is statement_timeout; default off.
	StatementTimeout string `json:"statementTimeout,omitempty"`

	// Lock and Statement are the parsed values (0: off), set by Load.
	Lock      time.Duration `json:"-"`
	Statement time.Duration `json:"-"`
}

// ParseTimeout reads a lock or statement timeout: a Go duration in whole
// milliseconds (PostgreSQL's unit), 0 meaning off.
func ParseTimeout(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	switch {
	case err != nil:
		return 0, fmt.Errorf("%q is not a duration like 5s, 500ms or 2m (0 turns the timeout off)", s)
	case d < 0:
		return 0, fmt.Errorf("%q is negative; use 0 to turn the timeout off", s)
	case d%time.Millisecond != 0:
		return 0, fmt.Errorf("%q is not a whole number of milliseconds, PostgreSQL's unit", s)
	case d.Milliseconds() > math.MaxInt32:
		return 0, fmt.Errorf("%q is over PostgreSQL's limit of %d ms", s, math.MaxInt32)
	}
	return d, nil
}

// FileSession is what a migration file's dbops annotations set; nil
// fields are left to the stack.
type FileSession struct {
	Lock      *time.Duration
	Statement *time.Duration
}

var dbopsAnnotation = regexp.MustCompile(`^--\s*dbops:(\S*)\s*(.*?)\s*$`)

// ReadFileSession reads the "-- dbops:lock-timeout 30s" and
// "-- dbops:statement-timeout 10m" lines of a migration file.
func ReadFileSession(body []byte) (FileSession, error) {
	var fs FileSession
	if !bytes.Contains(body, []byte("dbops:")) {
		return fs, nil // most files: no line to look at
	}
	rest := body
	for n := 1; len(rest) > 0; n++ {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		m := dbopsAnnotation.FindStringSubmatch(strings.TrimSpace(string(line)))
		if m == nil {
			continue
		}
		var dst **time.Duration
		switch m[1] {
		case "lock-timeout":
			dst = &fs.Lock
		case "statement-timeout":
			dst = &fs.Statement
		default:
			return FileSession{}, fmt.Errorf("line %d: unknown annotation dbops:%s (known: dbops:lock-timeout, dbops:statement-timeout)", n, m[1])
		}
		if *dst != nil {
			return FileSession{}, fmt.Errorf("line %d: dbops:%s is set twice", n, m[1])
		}
		d, err := ParseTimeout(m[2])
		if err != nil {
			return FileSession{}, fmt.Errorf("line %d: dbops:%s: %w", n, m[1], err)
		}
		*dst = &d
	}
	return fs, nil
}

// For returns the timeouts of one migration file: the stack's, overridden
// by the file's annotations.
func (s MigrationSession) For(body []byte) (lock, statement time.Duration, err error) {
	fs, err := ReadFileSession(body)
	if err != nil {
		return 0, 0, err
	}
	lock, statement = s.Lock, s.Statement
	if fs.Lock != nil {
		lock = *fs.Lock
	}
	if fs.Statement != nil {
		statement = *fs.Statement
	}
	return lock, statement, nil
}

// checkMigrationSession parses the stack's timeouts and every file's
// annotations, so that a bad one is a validate error naming the file.
func checkMigrationSession(m *Migrations, bad func(field, format string, args ...any)) {
	const field = "spec.postgres.migrations."
	m.Lock = DefaultLockTimeout
	if m.LockTimeout != "" {
		d, err := ParseTimeout(m.LockTimeout)
		if err != nil {
			bad(field+"lockTimeout", "%v", err)
		}
		m.Lock = d
	}
	if m.StatementTimeout != "" {
		d, err := ParseTimeout(m.StatementTimeout)
		if err != nil {
			bad(field+"statementTimeout", "%v", err)
		}
		m.Statement = d
	}
	if m.Path == "" {
		return // the folder itself is wrong; reported by checkMigrations
	}
	var files []string
	if m.Format == FormatDrizzle {
		entries, err := ReadJournal(m.Path)
		if err != nil {
			return // reported by checkDrizzle
		}
		for _, e := range entries {
			files = append(files, e.File())
		}
	} else {
		versions, err := MigrationVersions(m.Path)
		if err != nil {
			return
		}
		for _, f := range versions {
			files = append(files, f)
		}
		slices.Sort(files)
	}
	for _, f := range files {
		body, err := os.ReadFile(filepath.Join(m.Path, f))
		if err != nil {
			bad(field+"dir", "%s: %v", f, err)
			continue
		}
		if _, err := ReadFileSession(body); err != nil {
			bad(field+"dir", "%s: %v", f, err)
		}
	}
}
