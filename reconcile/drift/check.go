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
}

// Check compares the live database db (read with read-only queries) with
// what its applied migrations produce. scratchURL is where the scratch
// database is created (any database of that server; the role needs
// CREATEDB): the stack's URL for same-server. The scratch database is
// dropped before Check returns, also when the replay fails or ctx is
// cancelled.
func Check(ctx context.Context, m *spec.Migrations, db *sql.DB, scratchURL string) (Report, error) {
	start := time.Now()
	eng := postgres.EngineFor(m)
	live, err := eng.Observe(ctx, db)
	if err != nil {
		return Report{}, fmt.Errorf("read the applied migrations: %w", err)
	}
	ig := ignoreFor(m)
	expected, err := Expected(ctx, m, live.Applied, scratchURL, ig)
	if err != nil {
		return Report{}, err
	}
	got, err := Read(ctx, db, ig)
	if err != nil {
		return Report{}, fmt.Errorf("live schema: %w", err)
	}
	return Report{
		Level:     eng.Name(live.Version()),
		Scratch:   postgres.Server(scratchURL),
		Items:     Compare(expected, got),
		Objects:   len(expected),
		ElapsedMS: time.Since(start).Milliseconds(),
	}, nil
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

// Expected replays the migrations applied (goose versions or drizzle
// created_at values) into a new scratch database on scratchURL's server
// and reads its schema. The scratch database is always dropped.
func Expected(ctx context.Context, m *spec.Migrations, applied []int64, scratchURL string, ig Ignore) (_ Schema, err error) {
	steps, err := replaySteps(m, applied)
	if err != nil {
		return nil, err
	}
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
			return nil, fmt.Errorf("replay the applied migrations into scratch database %s on %s: %w", name, server, err)
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
