package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/amanat/dbops/spec"
)

// Session is the lock_timeout and statement_timeout a migration runs
// with; 0 is off.
type Session struct {
	Lock, Statement time.Duration
}

func (s Session) String() string {
	show := func(d time.Duration) string {
		if d == 0 {
			return "off"
		}
		return d.String()
	}
	return "lock_timeout " + show(s.Lock) + ", statement_timeout " + show(s.Statement)
}

// params are the session's settings as connection parameters, in ms.
func (s Session) params() map[string]string {
	return map[string]string{
		"lock_timeout":      strconv.FormatInt(s.Lock.Milliseconds(), 10),
		"statement_timeout": strconv.FormatInt(s.Statement.Milliseconds(), 10),
	}
}

// SessionOf is the session migration file runs with: the stack's timeouts,
// overridden by the file's -- dbops: annotations (validated by spec).
func SessionOf(m *spec.Migrations, file string) (Session, error) {
	body, err := os.ReadFile(filepath.Join(m.Path, file))
	if err != nil {
		return Session{}, err
	}
	lock, stmt, err := m.MigrationSession.For(body)
	if err != nil {
		return Session{}, fmt.Errorf("%s: %w", file, err)
	}
	return Session{Lock: lock, Statement: stmt}, nil
}

// NoTransaction reports whether migration file says NO TRANSACTION: such a
// migration is never retried, since a failure may have left it half-done.
func NoTransaction(m *spec.Migrations, file string) bool {
	body, _ := os.ReadFile(filepath.Join(m.Path, file))
	return noTxAnnotation.Match(body)
}

// Opener opens the connections migrations with session s run on: every
// connection has its timeouts, including the one goose migrates on.
type Opener func(s Session) (*sql.DB, error)

// OpenerFor opens connections to rawURL.
func OpenerFor(rawURL string, connectTimeout time.Duration) Opener {
	return func(s Session) (*sql.DB, error) {
		return open(rawURL, connectTimeout, false, s.params())
	}
}

// DefaultLockRetries is how many times a migration that timed out waiting
// for a lock is tried again.
const DefaultLockRetries = 3

// Retry says how a transactional migration that fails with SQLSTATE 55P03
// (lock_not_available: lock_timeout expired) is retried: its transaction
// was rolled back, so running it again is safe.
type Retry struct {
	Max     int           // retries after the first attempt; DefaultLockRetries when 0, none when < 0
	Backoff time.Duration // wait before the first retry, doubled each time; 1 s when 0
}

func (r Retry) max() int {
	switch {
	case r.Max < 0:
		return 0
	case r.Max == 0:
		return DefaultLockRetries
	}
	return r.Max
}

// delay before retry n (1-based): exponential backoff with jitter, in
// [d/2, d), so that several waiting dbops do not retry in step.
func (r Retry) delay(n int) time.Duration {
	d := r.Backoff
	if d <= 0 {
		d = time.Second
	}
	d <<= min(n-1, 10)
	return d/2 + rand.N(d/2+1)
}

// Describe says, for a plan, how migration file would be retried.
func (r Retry) Describe(noTx bool) string {
	if noTx {
		return "NO TRANSACTION: not retried on lock timeout (it may have run in part)"
	}
	if r.max() == 0 {
		return "not retried on lock timeout"
	}
	return fmt.Sprintf("retried up to %d times on lock timeout", r.max())
}

// MigrateOptions tune how Migrate runs migrations.
type MigrateOptions struct {
	// Open opens the connections of each batch with its session's timeouts;
	// when nil, migrations run on the db given, with the server's settings.
	Open  Opener
	Retry Retry
	// Started, when set, is called as each migration starts; the func it
	// returns is called when the migration ends, with its error.
	Started func(Step) func(error)
}

func (o MigrateOptions) started(s Step) func(error) {
	if o.Started == nil {
		return func(error) {}
	}
	return o.Started(s)
}

// IsLockTimeout reports whether err is PostgreSQL's lock_not_available.
func IsLockTimeout(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "55P03"
}

// sleep waits d unless ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
