package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/amanat/dbops/spec"
)

// Migrate runs goose from the database's version to the version to, under
// goose's session lock. Each migration runs in its own transaction unless its
// file says NO TRANSACTION. On failure the error names the file and carries
// the server's message; the database stays at the last good version.
func Migrate(ctx context.Context, db *sql.DB, m *spec.Migrations, from, to int64) ([]Step, error) {
	if from == to {
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
	var results []*goose.MigrationResult
	if to >= from {
		results, err = p.UpTo(ctx, to)
	} else {
		results, err = p.DownTo(ctx, to)
	}
	var done []Step
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
	return done, err
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
