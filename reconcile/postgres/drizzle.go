package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amanat/dbops/spec"
)

// DrizzleLockID is the transaction-level advisory lock dbops holds while
// applying drizzle migrations, so two dbops never apply at once. (drizzle's
// own migrator takes no lock; dbops also locks the migrations table, so a
// drizzle migrate() started meanwhile waits and then finds nothing to do.)
const DrizzleLockID int64 = 7238791342

// ErrEdited: an applied migration's file no longer matches its recorded hash.
var ErrEdited = errors.New("applied migration changed")

// drizzleEngine reads and records migrations exactly as drizzle-orm's
// PostgreSQL migrator does (drizzle-orm/src/migrator.ts readMigrationFiles,
// pg-core/dialect.ts migrate): journal order, <tag>.sql split on
// "--> statement-breakpoint", one row per migration in
// "drizzle"."__drizzle_migrations" with hash = SHA-256 hex of the file's
// text and created_at = the journal's when; a migration is applied when its
// when is at most the created_at of the row ordered last by created_at.
type drizzleEngine struct {
	m    *spec.Migrations
	migs []drizzleMigration // read once per engine (one plan or one apply)
}

// drizzleMigration is a journal entry and its file as drizzle reads it.
type drizzleMigration struct {
	spec.JournalEntry
	text string
	hash string
	// lfHash is the hash of the text with CRLF line ends made LF, which
	// newer drizzle-orm sources hash instead; either counts as unchanged.
	lfHash string
}

func (e *drizzleEngine) read() ([]drizzleMigration, error) {
	if e.migs != nil {
		return e.migs, nil
	}
	entries, err := spec.ReadJournal(e.m.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.m.Dir, err)
	}
	out := make([]drizzleMigration, len(entries))
	for i, en := range entries {
		body, err := os.ReadFile(filepath.Join(e.m.Path, en.File()))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		lf := sha256.Sum256(bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n")))
		out[i] = drizzleMigration{JournalEntry: en, text: string(body), hash: hex.EncodeToString(sum[:]), lfHash: hex.EncodeToString(lf[:])}
	}
	e.migs = out
	return out, nil
}

func (e *drizzleEngine) table() string { return pgx.Identifier{e.m.Schema, e.m.Table}.Sanitize() }

// shown names the table in messages as drizzle's users know it.
func (e *drizzleEngine) shown() string { return e.m.Schema + "." + e.m.Table }

func (e *drizzleEngine) Observe(ctx context.Context, db *sql.DB) (Live, error) {
	live := Live{Hashes: map[int64]string{}}
	if err := db.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL", e.table()).Scan(&live.TableExists); err != nil {
		return Live{}, err
	}
	if !live.TableExists {
		return e.countTables(ctx, db, live)
	}
	rows, err := db.QueryContext(ctx, "SELECT id, hash, created_at FROM "+e.table()+" ORDER BY id")
	if err != nil {
		return Live{}, fmt.Errorf("read %s: %w", e.shown(), err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var hash string
		var at sql.NullInt64
		if err := rows.Scan(&id, &hash, &at); err != nil {
			return Live{}, err
		}
		if !at.Valid { // drizzle orders it first and reads it as 0: everything would re-run
			return Live{}, fmt.Errorf("%s row id %d has no created_at: drizzle's migrator would then re-run every migration; set it to the journal's when of the migration it records", e.shown(), id)
		}
		if _, dup := live.Hashes[at.Int64]; !dup {
			live.Applied = append(live.Applied, at.Int64)
			live.Hashes[at.Int64] = hash
		}
	}
	if err := rows.Err(); err != nil {
		return Live{}, err
	}
	slices.Sort(live.Applied)
	if len(live.Applied) == 0 {
		return e.countTables(ctx, db, live)
	}
	return live, nil
}

// countTables fills live.Tables, needed only when nothing is recorded.
func (e *drizzleEngine) countTables(ctx context.Context, db *sql.DB, live Live) (Live, error) {
	var err error
	if live.Tables, err = countTables(ctx, db, e.table()); err != nil {
		return Live{}, err
	}
	return live, nil
}

func (e *drizzleEngine) Name(when int64) string {
	if when == 0 {
		return "none"
	}
	if migs, err := e.read(); err == nil {
		for _, m := range migs {
			if m.When == when {
				return m.Tag
			}
		}
	}
	return "created_at " + strconv.FormatInt(when, 10)
}

// UpSQL finds the step by its when: a Change carries the tag, not the file.
// The statements are split on drizzle's breakpoints, as its migrator sends
// them, and each is ended with a semicolon: a statement before a breakpoint
// need not end with one.
func (e *drizzleEngine) UpSQL(s Step) (string, error) {
	migs, err := e.read()
	if err != nil {
		return "", err
	}
	for _, m := range migs {
		if m.When == s.Version {
			// Each breakpoint ends a statement; replacing it by ";" in place
			// keeps the file's line numbers for risk's messages.
			return strings.Join(strings.Split(m.text, spec.Breakpoint), ";"), nil
		}
	}
	return "", fmt.Errorf("no migration with when %d in %s", s.Version, spec.JournalPath)
}

func (e *drizzleEngine) Diff(live Live) (Plan, error) {
	migs, err := e.read()
	if err != nil {
		return Plan{}, err
	}
	byWhen := map[int64]*drizzleMigration{}
	for i := range migs {
		byWhen[migs[i].When] = &migs[i]
	}
	var missing, edited, skipped []string
	for _, at := range live.Applied {
		m, ok := byWhen[at]
		switch {
		case !ok:
			missing = append(missing, strconv.FormatInt(at, 10))
		case live.Hashes[at] != m.hash && live.Hashes[at] != m.lfHash:
			edited = append(edited, fmt.Sprintf("%s (recorded %.12s…, file %.12s…; to accept the edit: UPDATE %s SET hash = '%s' WHERE created_at = %d)",
				m.Tag, live.Hashes[at], m.hash, e.table(), m.hash, at))
		}
	}
	if len(missing) > 0 {
		return Plan{}, fmt.Errorf("%w: %s has rows with created_at %s that match no migration in %s; restore the files or point migrations.dir at the right folder",
			ErrMissingFiles, e.shown(), strings.Join(missing, ", "), filepath.Join(e.m.Dir, spec.JournalPath))
	}
	if len(edited) > 0 {
		return Plan{}, fmt.Errorf("%w: %s changed after it was applied (its SHA-256 differs from the hash in %s); restore the file as it was applied, or record its new hash", ErrEdited, strings.Join(edited, "; "), e.shown())
	}
	level := live.Version()
	for _, m := range migs {
		if m.When <= level && live.Hashes[m.When] == "" {
			skipped = append(skipped, m.Tag)
		}
	}
	if len(skipped) > 0 {
		return Plan{}, fmt.Errorf("%w: %s not recorded in %s but a later migration is (the database is at %s): drizzle's migrator skips it for good; give it a when after the last applied one in %s",
			ErrOutOfOrder, strings.Join(skipped, ", "), e.shown(), e.Name(level), spec.JournalPath)
	}
	p := Plan{From: level}
	if len(live.Applied) == 0 {
		if b := e.m.Baseline; b != nil {
			i := slices.IndexFunc(migs, func(m drizzleMigration) bool { return m.Tag == b.Tag })
			if i < 0 {
				return Plan{}, fmt.Errorf("baseline %s is not in %s", b.Tag, spec.JournalPath)
			}
			p.Baseline = &Baseline{Version: migs[i].When, Name: b.Tag}
			for _, m := range migs[:i+1] {
				p.Baseline.Record = append(p.Baseline.Record, Step{Version: m.When, File: m.File(), Name: m.Tag})
			}
			level = migs[i].When
		} else if live.Tables > 0 {
			return Plan{}, needsBaseline(live, e.shown(), "drizzle tag", migs[len(migs)-1].Tag)
		}
	}
	target := migs[len(migs)-1]
	if t := e.m.Target; t.Pinned {
		i := slices.IndexFunc(migs, func(m drizzleMigration) bool { return m.Tag == t.Tag })
		if i < 0 {
			return Plan{}, fmt.Errorf("target %s is not in %s", t.Tag, spec.JournalPath)
		}
		target = migs[i]
	}
	if target.When < level {
		return Plan{}, fmt.Errorf("%w: target %s is below the live level %s, and drizzle has no down migrations; set target to %s or later (rolling back is a manual job)",
			ErrDownNotAllowed, target.Tag, e.Name(level), e.Name(level))
	}
	p.To = target.When
	for _, m := range migs {
		if m.When > level && m.When <= target.When {
			p.Steps = append(p.Steps, Step{Version: m.When, File: m.File(), Name: m.Tag})
		}
	}
	return p, nil
}

func (e *drizzleEngine) File(s Step) string {
	if migs, err := e.read(); err == nil {
		for _, m := range migs {
			if m.When == s.Version {
				return m.File()
			}
		}
	}
	return s.Name + ".sql"
}

// Migrate applies the plan in one transaction, as drizzle's migrator does:
// a failure rolls back every migration of the call, the migrations table
// and its schema included when this call created them. Each migration runs
// with its lock_timeout and statement_timeout (SET LOCAL: the stack's, or
// its file's -- dbops: annotations). A lock timeout (SQLSTATE 55P03) rolled
// the whole transaction back, so the whole transaction is run again after
// a backoff, up to o.Retry's bound. o.Open is not used: the settings are
// per transaction.
func (e *drizzleEngine) Migrate(ctx context.Context, db *sql.DB, p Plan, grace time.Duration, o MigrateOptions) ([]Step, error) {
	if len(p.Steps) == 0 && p.Baseline == nil {
		return nil, nil
	}
	if ctx.Err() != nil {
		return nil, ErrInterrupted
	}
	migs, err := e.read()
	if err != nil {
		return nil, err
	}
	byWhen := map[int64]*drizzleMigration{}
	for i := range migs {
		byWhen[migs[i].When] = &migs[i]
	}
	sessions := map[int64]Session{}
	for _, s := range p.Steps {
		m := byWhen[s.Version]
		if m == nil {
			return nil, fmt.Errorf("%s is no longer in %s: plan again", s.File, spec.JournalPath)
		}
		lock, stmt, err := e.m.MigrationSession.For([]byte(m.text))
		if err != nil {
			return nil, &MigrationError{File: m.File(), Version: m.When, Err: err}
		}
		sessions[m.When] = Session{Lock: lock, Statement: stmt}
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { // the transaction gets grace to finish
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-runCtx.Done():
		}
	})
	defer stop()

	retries := map[int64]int{}
	for {
		err := e.migrateOnce(runCtx, db, p, migs, byWhen, sessions, o)
		if err == nil {
			done := slices.Clone(p.Steps)
			for i := range done {
				done[i].Retries = retries[done[i].Version]
			}
			return done, nil
		}
		var merr *MigrationError
		if !errors.As(err, &merr) || !IsLockTimeout(err) {
			return nil, err
		}
		merr.Retries = retries[merr.Version]
		if merr.Retries >= o.Retry.max() {
			merr.Note = fmt.Sprintf("gave up after %d retries with %s (every migration of this apply was rolled back); %s", merr.Retries, sessions[merr.Version], lockHint)
			return nil, merr
		}
		retries[merr.Version]++
		if sleep(ctx, o.Retry.delay(retries[merr.Version])) != nil {
			return nil, ErrInterrupted // the transaction was rolled back
		}
	}
}

// migrateOnce is one attempt of Migrate: one transaction.
func (e *drizzleEngine) migrateOnce(ctx context.Context, db *sql.DB, p Plan, migs []drizzleMigration, byWhen map[int64]*drizzleMigration, sessions map[int64]Session, o MigrateOptions) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	table := e.table()
	for _, q := range []string{
		// taken with the server's timeouts: waiting for another dbops is fine
		"SELECT pg_advisory_xact_lock(" + strconv.FormatInt(DrizzleLockID, 10) + ")",
		"CREATE SCHEMA IF NOT EXISTS " + pgx.Identifier{e.m.Schema}.Sanitize(),
		// drizzle-orm's DDL, word for word
		"CREATE TABLE IF NOT EXISTS " + table + " (\n\t\t\t\tid SERIAL PRIMARY KEY,\n\t\t\t\thash text NOT NULL,\n\t\t\t\tcreated_at bigint\n\t\t\t)",
		"LOCK TABLE " + table + " IN ACCESS EXCLUSIVE MODE",
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("prepare %s: %w", e.shown(), err)
		}
	}
	// drizzle's own reading of the level, now that nobody else can move it
	var last sql.NullInt64
	var rows int
	if err := tx.QueryRowContext(ctx, "SELECT (SELECT created_at FROM "+table+" ORDER BY created_at DESC LIMIT 1), (SELECT count(*) FROM "+table+")").Scan(&last, &rows); err != nil {
		return err
	}
	insert := "INSERT INTO " + table + ` ("hash", "created_at") VALUES ($1, $2)`
	if p.Baseline != nil {
		if p.Baseline.Record == nil { // rebuilt from a Change: everything up to its when
			for _, m := range migs {
				if m.When <= p.Baseline.Version {
					p.Baseline.Record = append(p.Baseline.Record, Step{Version: m.When, File: m.File(), Name: m.Tag})
				}
			}
		}
		if rows > 0 {
			return fmt.Errorf("%s has rows now, but the plan records a baseline: plan again", e.shown())
		}
		for _, s := range p.Baseline.Record {
			m := byWhen[s.Version]
			if m == nil {
				return fmt.Errorf("baseline: %s is no longer in %s: plan again", s.File, spec.JournalPath)
			}
			if _, err := tx.ExecContext(ctx, insert, m.hash, m.When); err != nil {
				return fmt.Errorf("baseline %s: %w", p.Baseline.Name, err)
			}
		}
	} else if last.Int64 != p.From {
		return fmt.Errorf("%s moved since the plan (now at %s, planned from %s): plan again", e.shown(), e.Name(last.Int64), e.Name(p.From))
	}
	for _, s := range p.Steps {
		// Progress per migration; all of them commit together below.
		end := o.started(s)
		err := e.runOne(ctx, tx, byWhen[s.Version], sessions, insert)
		end(err)
		if err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// runOne runs one drizzle migration inside the apply's transaction.
func (e *drizzleEngine) runOne(ctx context.Context, tx *sql.Tx, m *drizzleMigration, sessions map[int64]Session, insert string) error {
	set := sessions[m.When].params()
	if _, err := tx.ExecContext(ctx, "SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)",
		set["lock_timeout"], set["statement_timeout"]); err != nil {
		return &MigrationError{File: m.File(), Version: m.When, Err: err}
	}
	for _, stmt := range strings.Split(m.text, spec.Breakpoint) {
		if strings.TrimSpace(stmt) == "" {
			continue // drizzle sends it too; the server does nothing with it
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return &MigrationError{File: m.File(), Version: m.When, Err: err}
		}
	}
	if _, err := tx.ExecContext(ctx, insert, m.hash, m.When); err != nil {
		return &MigrationError{File: m.File(), Version: m.When, Err: err}
	}
	return nil
}
