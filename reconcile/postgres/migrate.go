package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/amanat/dbops/spec"
)

// ErrInterrupted means Migrate stopped between two migrations because its
// context was cancelled; the database is at a clean version.
var ErrInterrupted = errors.New("stopped between migrations on request")

// Migrate runs the planned steps one at a time through goose, under goose's
// session lock. Each migration runs in its own transaction unless its file
// says NO TRANSACTION. On failure the error names the file and carries the
// server's message; the database stays at the last good version.
//
// Steps run in batches: consecutive migrations with the same session
// settings share connections, each NO TRANSACTION migration on its own;
// within a batch goose runs one migration per call. Cancelling ctx stops
// Migrate before the next migration; the one running is given grace to
// finish before its statement is cancelled too, which rolls back its
// transaction. Only a NO TRANSACTION migration that overruns
// grace can be cut half-way, as it would be by any client.
//
// Each batch runs on connections opened by o.Open with the lock_timeout and
// statement_timeout of its migrations (consecutive migrations with the same
// timeouts share a batch). A transactional migration that fails on
// lock_timeout (SQLSTATE 55P03) was rolled back: it is run again after a
// backoff with jitter, up to o.Retry's bound. A NO TRANSACTION migration is
// never retried, since it may have run in part.
func Migrate(ctx context.Context, db *sql.DB, m *spec.Migrations, steps []Step, grace time.Duration, o MigrateOptions) ([]Step, error) {
	if len(steps) == 0 {
		return nil, nil
	}
	groups, err := batches(m, steps)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-runCtx.Done():
		}
	})
	defer stop()

	var done []Step
	for _, b := range groups {
		if ctx.Err() != nil {
			return done, ErrInterrupted
		}
		ran, err := runBatch(ctx, runCtx, db, m, b, o)
		done = append(done, ran...)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// runBatch runs one batch through goose, retrying a migration that timed
// out waiting for a lock.
func runBatch(ctx, runCtx context.Context, db *sql.DB, m *spec.Migrations, b batch, o MigrateOptions) ([]Step, error) {
	if o.Open != nil {
		sdb, err := o.Open(b.session)
		if err != nil {
			return nil, err
		}
		defer sdb.Close()
		db = sdb
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(LockID))
	if err != nil {
		return nil, err
	}
	opts := []goose.ProviderOption{goose.WithTableName(m.Table), goose.WithDisableGlobalRegistry(true)}
	if len(b.steps) > 1 {
		// goose's lock once for the batch, on a session of its own, as
		// `goose up` holds it: per migration (goose takes it per call)
		// it cost two round trips each, a tenth of applying 200 small
		// ones. One migration keeps goose's per-call lock: no extra session.
		unlock, err := holdLock(ctx, db, locker)
		if err != nil {
			return nil, err
		}
		defer unlock()
	} else {
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS(m.Path), opts...)
	if err != nil {
		return nil, fmt.Errorf("migrations %s: %w", m.Dir, err)
	}
	// No p.Close(): it closes db, which the caller still uses (to observe
	// the level reached, or to put a first failed apply back).

	var done []Step
	for _, s := range b.steps {
		// Between two migrations, even of one batch: an interrupted apply
		// stops before the next one.
		if ctx.Err() != nil {
			return done, ErrInterrupted
		}
		end := o.started(s)
		ran, err := runStep(ctx, runCtx, p, b, s, o)
		end(err)
		done = append(done, ran...)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// holdLock takes goose's session lock on a session of db kept for it,
// waiting as goose does for another goose (or dbops) holding it; unlock
// releases it and gives the session back. Ctrl-C while waiting is
// ErrInterrupted: nothing ran.
func holdLock(ctx context.Context, db *sql.DB, locker lock.SessionLocker) (unlock func(), err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if err := locker.SessionLock(ctx, conn); err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, ErrInterrupted
		}
		return nil, fmt.Errorf("goose's migration lock: %w", err)
	}
	return func() {
		if err := locker.SessionUnlock(context.WithoutCancel(ctx), conn); err != nil {
			// Not back to the pool holding the lock: close the session.
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}, nil
}

// runStep runs one migration through goose, retrying it when it timed out
// waiting for a lock.
func runStep(ctx, runCtx context.Context, p *goose.Provider, b batch, s Step, o MigrateOptions) ([]Step, error) {
	retries := 0
	for {
		var results []*goose.MigrationResult
		var err error
		if s.Down {
			results, err = p.DownTo(runCtx, s.Version-1)
		} else {
			// ApplyVersion, not UpTo: UpTo lists the whole version table
			// twice per call (HasPending, then up), which made one call per
			// migration quadratic. The plan already fixed the order, and
			// gooseEngine.Migrate checks it against the live table first.
			var r *goose.MigrationResult
			r, err = p.ApplyVersion(runCtx, s.Version, true)
			switch {
			case r != nil:
				results = []*goose.MigrationResult{r}
			case errors.Is(err, goose.ErrAlreadyApplied):
				err = nil // applied meanwhile by another client, as UpTo would say
			}
		}
		var perr *goose.PartialError
		if errors.As(err, &perr) {
			results = perr.Applied
		}
		var done []Step
		for _, r := range results {
			done = append(done, Step{Version: r.Source.Version, File: path.Base(r.Source.Path), Down: r.Direction == "down", Retries: retries})
		}
		if err == nil {
			return done, nil
		}
		merr := &MigrationError{File: s.File, Version: s.Version, Err: err, Retries: retries}
		if perr != nil {
			merr = &MigrationError{File: path.Base(perr.Failed.Source.Path), Version: perr.Failed.Source.Version, Err: perr.Err, Retries: retries}
		}
		if !IsLockTimeout(err) {
			return done, merr
		}
		switch {
		case b.noTx:
			merr.Note = fmt.Sprintf("not retried: a NO TRANSACTION migration may have run in part, check it before applying again (%s); %s", b.session, lockHint)
			return done, merr
		case merr.Retries >= o.Retry.max():
			merr.Note = fmt.Sprintf("gave up after %d retries with %s; %s", merr.Retries, b.session, lockHint)
			return done, merr
		}
		retries++
		if sleep(ctx, o.Retry.delay(retries)) != nil {
			return done, ErrInterrupted // the failed migration was rolled back
		}
	}
}

// lockHint says what to do about a migration that timed out waiting for a lock.
const lockHint = "another transaction holds a lock it needs (see pg_blocking_pids() in pg_stat_activity), or raise migrations.lockTimeout / -- dbops:lock-timeout"

// MigrationError is a migration that failed.
type MigrationError struct {
	File    string
	Version int64
	Err     error
	Retries int    // how many times it was retried after a lock timeout
	Note    string // why it was not retried (further)
}

func (e *MigrationError) Error() string {
	msg := fmt.Sprintf("migration %s failed: %v", e.File, e.Err)
	if e.Note != "" {
		msg += "; " + e.Note
	}
	return msg
}

func (e *MigrationError) Unwrap() error { return e.Err }

var noTxAnnotation = regexp.MustCompile(`(?m)^--\s*\+goose\s+NO\s+TRANSACTION\b`)

// batch is consecutive migrations run by one goose call, in one session.
type batch struct {
	steps   []Step
	session Session
	noTx    bool
}

// batches groups steps so that NO TRANSACTION migrations run alone, and
// migrations with different timeouts in different sessions.
func batches(m *spec.Migrations, steps []Step) ([]batch, error) {
	var out []batch
	for _, s := range steps {
		session, err := SessionOf(m, s.File)
		if err != nil {
			return nil, &MigrationError{File: s.File, Version: s.Version, Err: err}
		}
		noTx := NoTransaction(m, s.File)
		if n := len(out); n > 0 && !noTx && !out[n-1].noTx && out[n-1].session == session {
			out[n-1].steps = append(out[n-1].steps, s)
			continue
		}
		out = append(out, batch{steps: []Step{s}, session: session, noTx: noTx})
	}
	return out, nil
}
