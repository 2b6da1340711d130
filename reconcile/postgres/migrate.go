package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
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
// Steps run in batches: consecutive transactional migrations in one goose
// call, each NO TRANSACTION migration on its own. Cancelling ctx stops
// Migrate before the next batch; the batch running is given grace to finish
// before its statement is cancelled too, which rolls back the transaction
// of the migration under way. Only a NO TRANSACTION migration that overruns
// grace can be cut half-way, as it would be by any client.
func Migrate(ctx context.Context, db *sql.DB, m *spec.Migrations, steps []Step, grace time.Duration) ([]Step, error) {
	if len(steps) == 0 {
		return nil, nil
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(LockID))
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS(m.Path),
		goose.WithSessionLocker(locker),
		goose.WithTableName(m.Table),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return nil, fmt.Errorf("migrations %s: %w", m.Dir, err)
	}
	// No p.Close(): it closes db, which the caller still uses (to observe
	// the level reached, or to put a first failed apply back).

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
	for _, g := range batches(m.Path, steps) {
		if ctx.Err() != nil {
			return done, ErrInterrupted
		}
		last := g[len(g)-1]
		var results []*goose.MigrationResult
		if last.Down {
			results, err = p.DownTo(runCtx, last.Version-1) // everything above last is in g
		} else {
			results, err = p.UpTo(runCtx, last.Version)
		}
		var perr *goose.PartialError
		if errors.As(err, &perr) {
			results = perr.Applied
		}
		for _, r := range results {
			done = append(done, Step{Version: r.Source.Version, File: path.Base(r.Source.Path), Down: r.Direction == "down"})
		}
		if perr != nil {
			return done, &MigrationError{File: path.Base(perr.Failed.Source.Path), Version: perr.Failed.Source.Version, Err: perr.Err}
		}
		if err != nil {
			return done, &MigrationError{File: g[0].File, Version: g[0].Version, Err: err}
		}
	}
	return done, nil
}

// MigrationError is a migration that failed.
type MigrationError struct {
	File    string
	Version int64
	Err     error
}

func (e *MigrationError) Error() string {
	return fmt.Sprintf("migration %s failed: %v", e.File, e.Err)
}

func (e *MigrationError) Unwrap() error { return e.Err }

var noTxAnnotation = regexp.MustCompile(`(?m)^--\s*\+goose\s+NO\s+TRANSACTION\b`)

// batches groups steps so that NO TRANSACTION migrations run alone.
func batches(dir string, steps []Step) [][]Step {
	var out [][]Step
	var cur []Step
	for _, s := range steps {
		body, _ := os.ReadFile(filepath.Join(dir, s.File))
		if noTxAnnotation.Match(body) {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = nil
			}
			out = append(out, []Step{s})
			continue
		}
		cur = append(cur, s)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}
