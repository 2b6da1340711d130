// Package drift detects schema drift: it compares the live schema of a
// stack's database with the schema its applied migrations produce when
// replayed into a scratch database, and reports the difference as plain
// data. It never changes the live database.
package drift

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/spec"
)

// ScratchPrefix starts the name of every scratch database dbops creates.
const ScratchPrefix = "dbops_drift_"

// Report is the outcome of one drift check.
type Report struct {
	// Level is the live migration level the expected schema was built to.
	Level string `json:"level"`
	// Scratch names the server the expected schema was built on (no credentials).
	Scratch string `json:"scratch"`
	Items   []Item `json:"items"`
	// Objects counts the objects compared (expected).
	Objects int `json:"objects"`
	// Elapsed is how long the check took, in milliseconds.
	ElapsedMS int64 `json:"elapsedMs"`
	// Expected says where the expected schema came from: "cache" or
	// "scratch" (replayed in a scratch database for this check).
	Expected string `json:"expected"`
	// CacheKey identifies the migration set (see Key).
	CacheKey string `json:"cacheKey"`
}

// Where an expected schema came from (Report.Expected).
const (
	FromCache   = "cache"
	FromScratch = "scratch"
)

// ErrUnavailable: the expected schema is neither cached nor buildable
// (e.g. plan with read-only credentials and no CREATEDB).
var ErrUnavailable = errors.New("expected schema unavailable")

// ErrMoved: the live migration level changed while the check ran (a
// migration was applied meanwhile); check again.
var ErrMoved = errors.New("the migration level changed during the check")

// Check compares the live database db (read with read-only queries) with
// what its applied migrations produce. The expected schema comes from cache
// when it holds one for this migration set (Key; cache may be nil), else it
// is built in a scratch database on scratchURL's server (any database of
// that server; the role needs CREATEDB), the stack's URL for same-server,
// and cached. sameServer says scratchURL is the stack's own server. The
// scratch database is dropped before Check returns, also when the replay
// fails or ctx is cancelled. A schema neither cached nor buildable is an
// error wrapping ErrUnavailable.
func Check(ctx context.Context, m *spec.Migrations, db *sql.DB, scratchURL string, sameServer bool, cache Cache) (Report, error) {
	start := time.Now()
	eng := postgres.EngineFor(m)
	live, err := eng.Observe(ctx, db)
	if err != nil {
		return Report{}, fmt.Errorf("read the applied migrations: %w", err)
	}
	r := Report{Level: eng.Name(live.Version()), Scratch: postgres.Server(scratchURL)}
	steps, err := replaySteps(m, live.Applied)
	if err != nil {
		return r, err
	}
	major, err := serverMajor(ctx, db)
	if err != nil {
		return r, fmt.Errorf("live schema: %w", err)
	}
	where := "same-server"
	if !sameServer {
		where = r.Scratch
	}
	r.CacheKey, err = Key(m, steps, major, where)
	if err != nil {
		return r, err
	}
	ig := ignoreFor(m)
	expected, ok := Schema(nil), false
	if cache != nil {
		expected, ok = cache.Get(r.CacheKey)
	}
	r.Expected = FromCache
	if !ok {
		r.Expected = FromScratch
		expected, err = build(ctx, m, steps, scratchURL, ig)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, errReplay) {
				err = fmt.Errorf("%w: no cached expected schema for level %s, and building one failed: %w", ErrUnavailable, r.Level, err)
			}
			return r, err
		}
		if cache != nil {
			_ = cache.Put(r.CacheKey, expected) // a cache that cannot be written is rebuilt next time
		}
	}
	got, err := Read(ctx, db, ig)
	if err != nil {
		return r, fmt.Errorf("live schema: %w", err)
	}
	// A migration applied while the schemas were read would show as drift.
	again, err := eng.Observe(ctx, db)
	if err != nil {
		return r, fmt.Errorf("read the applied migrations: %w", err)
	}
	if !slices.Equal(again.Applied, live.Applied) {
		return r, fmt.Errorf("%w (from %s to %s)", ErrMoved, r.Level, eng.Name(again.Version()))
	}
	r.Items, r.Objects = Compare(expected, got), len(expected)
	r.ElapsedMS = time.Since(start).Milliseconds()
	return r, nil
}

// serverMajor is the server's major version (18 for 18.4), from the
// version the server reported at login (no statement).
func serverMajor(ctx context.Context, db *sql.DB) (int, error) {
	_, num, err := postgres.ServerVersion(ctx, db)
	if err != nil {
		return 0, err
	}
	return num / 10000, nil
}

// ignoreFor lists the version tables of m's format: goose's table and
// dbops' checksum ledger beside it, or drizzle's table and its schema.
func ignoreFor(m *spec.Migrations) Ignore {
	shown := func(t string) string { return strings.TrimPrefix(t, "public.") }
	if m.Format == spec.FormatDrizzle {
		ig := Ignore{Tables: []string{shown(m.Schema + "." + m.Table)}}
		if m.Schema != "public" {
			ig.Schemas = []string{m.Schema}
		}
		return ig
	}
	return Ignore{Tables: []string{shown(m.Table), shown(postgres.LedgerTable(m.Table))}}
}

// errReplay marks a migration that failed in the scratch database: the
// server worked, the migration set did not replay.
var errReplay = errors.New("replay the applied migrations")

// build replays steps into a new scratch database on scratchURL's server
// and reads its schema. The scratch database is always dropped.
func build(ctx context.Context, m *spec.Migrations, steps []postgres.Step, scratchURL string, ig Ignore) (_ Schema, err error) {
	admin, err := postgres.Open(scratchURL, 10*time.Second, false)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	name, err := scratchName()
	if err != nil {
		return nil, err
	}
	server := postgres.Server(scratchURL)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create scratch database %s on %s (the role needs CREATEDB, or set spec.postgres.drift.scratch to another server): %w", name, server, err)
	}
	defer func() {
		// Dropped even when ctx is cancelled (SIGTERM): a fresh, bounded context.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, derr := admin.ExecContext(dctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); derr != nil {
			err = errors.Join(err, fmt.Errorf("drop scratch database %s on %s: %w (drop it by hand)", name, server, derr))
		}
	}()
	u, err := withDatabase(scratchURL, name)
	if err != nil {
		return nil, err
	}
	sdb, err := postgres.Open(u, 10*time.Second, false)
	if err != nil {
		return nil, err
	}
	defer sdb.Close() // before the drop (defers run last-in first-out)
	if len(steps) > 0 {
		plan := postgres.Plan{To: steps[len(steps)-1].Version, Steps: steps}
		if _, err := postgres.EngineFor(m).Migrate(ctx, sdb, plan, 0, postgres.MigrateOptions{}); err != nil {
			return nil, fmt.Errorf("%w into scratch database %s on %s: %w", errReplay, name, server, err)
		}
	}
	s, err := Read(ctx, sdb, ig)
	if err != nil {
		return nil, fmt.Errorf("expected schema: %w", err)
	}
	return s, nil
}

// replaySteps are the migrations in m's folder that the database has
// applied, in order: the plan from nothing to the latest, kept to those.
func replaySteps(m *spec.Migrations, applied []int64) ([]postgres.Step, error) {
	all := *m
	all.Target, all.Baseline = spec.Target{}, nil
	p, err := postgres.EngineFor(&all).Diff(postgres.Live{})
	if err != nil {
		return nil, fmt.Errorf("plan the replay: %w", err)
	}
	var steps []postgres.Step
	for _, s := range p.Steps {
		if slices.Contains(applied, s.Version) {
			steps = append(steps, s)
		}
	}
	if len(steps) != len(applied) {
		return nil, fmt.Errorf("%d migrations are recorded as applied but only %d are in %s: the expected schema cannot be built", len(applied), len(steps), m.Dir)
	}
	return steps, nil
}

func scratchName() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return ScratchPrefix + hex.EncodeToString(b), nil
}

// withDatabase is rawURL pointing at database name.
func withDatabase(rawURL, name string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("scratch server: a postgres:// URL is needed %s", spec.Hidden)
	}
	u.Path, u.RawPath = "/"+name, ""
	return u.String(), nil
}
