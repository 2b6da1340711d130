package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"

	"github.com/amanat/dbops/reconcile/risk"
	"github.com/amanat/dbops/spec"
)

// Engine is one migration format: how its level is read, planned and
// applied. Plan, apply, risk analysis and the loop use it alike, so both
// formats get windows, backups, saved plans and locks the same way.
type Engine interface {
	// Observe reads the applied migrations with read-only queries; a
	// missing version table is nothing applied, and is not created.
	Observe(ctx context.Context, db *sql.DB) (Live, error)
	// Diff plans the steps from live to the spec's target.
	Diff(live Live) (Plan, error)
	// Name is how a migration level is shown: a goose version, a drizzle
	// tag ("none" for nothing applied).
	Name(version int64) string
	// UpSQL is the SQL a step runs, for risk analysis.
	UpSQL(s Step) (string, error)
	// Migrate records p.Baseline when set, then runs p.Steps with the
	// lock_timeout and statement_timeout of each migration, retrying one
	// that timed out waiting for a lock as o.Retry says. It returns the
	// steps that were applied. Cancelling ctx stops it between
	// migrations; what runs gets grace to finish.
	Migrate(ctx context.Context, db *sql.DB, p Plan, grace time.Duration, o MigrateOptions) ([]Step, error)
	// File is the migration file of step s, as -- dbops: annotations
	// and the plan's session notes read it.
	File(s Step) string
}

// Live is the migration state of a database and what else plan needs to
// know about it.
type Live struct {
	State
	// TableExists says whether the version table is there at all.
	TableExists bool
	// Tables counts user tables other than the version table when nothing
	// is recorded (0 otherwise: only then is it needed): a database with
	// tables but nothing recorded predates dbops and needs a baseline.
	Tables int
	// LedgerExists says whether dbops' checksum ledger is there (goose).
	LedgerExists bool
	// Ledger is the ledger's rows by version, read with goose's rows; nil
	// when they were not read that way (ReadLedgerOf reads them).
	Ledger map[int64]Checksum
	// LedgerErr is why the ledger could not be read with goose's rows (no
	// SELECT on it): reading it again would only fail again.
	LedgerErr error
	// Hashes are drizzle's recorded hashes by created_at.
	Hashes map[int64]string
}

// Baseline is a database's existing level, recorded without running the
// migrations up to it.
type Baseline struct {
	Version int64  `json:"version"` // goose version, or drizzle's when
	Name    string `json:"name"`    // the goose version or drizzle tag as written
	Record  []Step `json:"record"`  // the migrations recorded as applied, in order
}

// ErrNoBaseline: the database has tables but no recorded migrations.
var ErrNoBaseline = errors.New("no recorded migrations")

// EngineFor returns the engine of m's format.
func EngineFor(m *spec.Migrations) Engine {
	if m.Format == spec.FormatDrizzle {
		return &drizzleEngine{m: m}
	}
	return &gooseEngine{m: m}
}

// userTables counts ordinary and partitioned tables outside the system
// schemas, not owned by extensions, other than the version table itself.
const userTables = `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
	  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
	  AND n.nspname NOT LIKE 'pg\_temp\_%'
	  AND c.oid IS DISTINCT FROM to_regclass($1)
	  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`

func countTables(ctx context.Context, db *sql.DB, versionTable string) (int, error) {
	var n int
	if err := db.QueryRowContext(ctx, userTables, versionTable).Scan(&n); err != nil {
		return 0, fmt.Errorf("count tables: %w", err)
	}
	return n, nil
}

// needsBaseline is the error of a database with tables and nothing recorded.
func needsBaseline(live Live, table, what, example string) error {
	where := "no " + table
	if live.TableExists {
		where = "an empty " + table
	}
	if example != "" {
		example = " (e.g. baseline: " + example + ")"
	}
	return fmt.Errorf("%w: database has %d tables but %s: set migrations.baseline to the %s it is at%s; apply then records the migrations up to it as applied without running them",
		ErrNoBaseline, live.Tables, where, what, example)
}

type gooseEngine struct{ m *spec.Migrations }

func (e *gooseEngine) Observe(ctx context.Context, db *sql.DB) (Live, error) {
	live, err := observe(ctx, db, e.m.Table)
	if err != nil {
		return Live{}, err
	}
	if len(live.Applied) == 0 {
		if live.Tables, err = countTables(ctx, db, e.m.Table); err != nil {
			return Live{}, err
		}
	}
	return live, nil
}

func (e *gooseEngine) Name(v int64) string { return strconv.FormatInt(v, 10) }

func (e *gooseEngine) Diff(live Live) (Plan, error) {
	available, err := spec.MigrationVersions(e.m.Path)
	if err != nil {
		return Plan{}, err
	}
	named := func(p Plan, err error) (Plan, error) {
		for i := range p.Steps {
			p.Steps[i].Name = p.Steps[i].File
		}
		return p, err
	}
	if len(live.Applied) > 0 { // baseline is ignored once the table has rows
		return named(Diff(e.m, available, live.State))
	}
	b := e.m.Baseline
	if b == nil {
		if live.Tables > 0 {
			return Plan{}, needsBaseline(live, e.m.Table, "goose version", "")
		}
		return named(Diff(e.m, available, live.State))
	}
	base := &Baseline{Version: b.Version, Name: b.String()}
	if err := e.baselineRecord(base); err != nil {
		return Plan{}, err
	}
	assumed := State{}
	for _, s := range base.Record {
		assumed.Applied = append(assumed.Applied, s.Version)
	}
	p, err := Diff(e.m, available, assumed)
	if err != nil {
		return Plan{}, err
	}
	p.From, p.Baseline = 0, base
	return named(p, nil)
}

// baselineRecord fills in the migrations a baseline records when the plan
// carries only its version (as apply rebuilds it from a Change).
func (e *gooseEngine) baselineRecord(b *Baseline) error {
	if b == nil || b.Record != nil {
		return nil
	}
	available, err := spec.MigrationVersions(e.m.Path)
	if err != nil {
		return err
	}
	for _, v := range slices.Sorted(maps.Keys(available)) {
		if v <= b.Version {
			b.Record = append(b.Record, Step{Version: v, File: available[v], Name: available[v]})
		}
	}
	return nil
}

func (e *gooseEngine) UpSQL(s Step) (string, error) {
	body, err := os.ReadFile(filepath.Join(e.m.Path, s.File))
	if err != nil {
		return "", err
	}
	return risk.SplitGoose(body, false)
}

func (e *gooseEngine) File(s Step) string { return s.File }

// Migrate records the baseline in goose's own table (created as goose
// creates it), then runs the steps through goose (see Migrate for batches,
// sessions and retries). If nothing could be applied on a database whose
// table dbops created or filled in this call, it is put back as it was: no
// stray goose_db_version is left behind. Otherwise dbops' checksum ledger
// records what stays: the baseline's migrations at adoption, the ones run
// as applied; a failure to write it is a *LedgerError.
func (e *gooseEngine) Migrate(ctx context.Context, db *sql.DB, p Plan, grace time.Duration, o MigrateOptions) ([]Step, error) {
	fresh, err := e.Observe(ctx, db)
	if err != nil {
		return nil, err
	}
	if err := e.baselineRecord(p.Baseline); err != nil {
		return nil, err
	}
	if len(fresh.Applied) > 0 && p.Baseline != nil {
		return nil, fmt.Errorf("%s has rows now, but the plan records a baseline: plan again", e.m.Table)
	}
	// Migrate applies exactly the planned versions (goose's ApplyVersion),
	// so a version applied above one of them since the plan is caught here.
	for _, s := range p.Steps {
		if !s.Down && s.Version < fresh.Version() {
			return nil, fmt.Errorf("%w: %s (version %d) is not applied but %s is at version %d now: plan again",
				ErrOutOfOrder, s.File, s.Version, e.m.Table, fresh.Version())
		}
	}
	if p.Baseline != nil {
		if err := e.recordBaseline(ctx, db, p.Baseline); err != nil {
			return nil, fmt.Errorf("baseline %s: %w", p.Baseline.Name, err)
		}
	}
	done, err := Migrate(ctx, db, e.m, p.Steps, grace, o)
	base := p.Baseline
	if err != nil && len(done) == 0 && len(fresh.Applied) == 0 {
		base = nil // undone below: nothing to record
		if uerr := e.undo(context.WithoutCancel(ctx), db, fresh.TableExists, p.Baseline); uerr != nil {
			err = fmt.Errorf("%w (and putting %s back as it was failed: %v)", err, e.m.Table, uerr)
		}
	}
	if lerr := e.record(context.WithoutCancel(ctx), db, base, done); lerr != nil {
		return done, &LedgerError{Err: lerr, Migrate: err}
	}
	return done, err
}

// record writes the checksum ledger after Migrate: the baseline's
// migrations at adoption (dbops did not run them), then the steps run.
func (e *gooseEngine) record(ctx context.Context, db *sql.DB, base *Baseline, done []Step) error {
	if base != nil {
		adopted := map[int64]string{}
		for _, s := range base.Record {
			adopted[s.Version] = s.File
		}
		if _, err := Record(ctx, db, e.m, adopted, SourceAdoption, false, nil); err != nil {
			return err
		}
	}
	if len(done) == 0 {
		return nil
	}
	up := map[int64]string{}
	var down []int64
	for _, s := range done {
		if s.Down {
			down = append(down, s.Version)
			delete(up, s.Version)
		} else {
			up[s.Version] = s.File
			down = slices.DeleteFunc(down, func(v int64) bool { return v == s.Version })
		}
	}
	_, err := Record(ctx, db, e.m, up, SourceApplied, true, down)
	return err
}

// withGooseLock runs fn on a connection holding goose's session lock, so
// no goose run (dbops' or the goose CLI's) migrates meanwhile.
func withGooseLock(ctx context.Context, db *sql.DB, fn func(*sql.Conn) error) error {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(LockID))
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := locker.SessionLock(ctx, conn); err != nil {
		return err
	}
	defer locker.SessionUnlock(context.WithoutCancel(ctx), conn)
	return fn(conn)
}

func (e *gooseEngine) recordBaseline(ctx context.Context, db *sql.DB, b *Baseline) error {
	store, err := database.NewStore(database.DialectPostgres, e.m.Table)
	if err != nil {
		return err
	}
	return withGooseLock(ctx, db, func(conn *sql.Conn) error {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		var exists bool
		if err := tx.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL", e.m.Table).Scan(&exists); err != nil {
			return err
		}
		if !exists { // as goose's Provider creates it: the table and its version 0 row
			if err := store.CreateVersionTable(ctx, tx); err != nil {
				return err
			}
			if err := store.Insert(ctx, tx, database.InsertRequest{Version: 0}); err != nil {
				return err
			}
		}
		for _, s := range b.Record {
			if err := store.Insert(ctx, tx, database.InsertRequest{Version: s.Version}); err != nil {
				return err
			}
		}
		return tx.Commit()
	})
}

// undo drops the version table dbops created, or deletes the baseline rows
// it added to an empty one, provided it still holds nothing else.
func (e *gooseEngine) undo(ctx context.Context, db *sql.DB, existed bool, b *Baseline) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return withGooseLock(ctx, db, func(conn *sql.Conn) error {
		var exists bool
		if err := conn.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL", e.m.Table).Scan(&exists); err != nil || !exists {
			return err
		}
		ident := pgx.Identifier(strings.SplitN(e.m.Table, ".", 2)).Sanitize()
		recorded := []int64{} // not nil: ANY(NULL) would match nothing
		if b != nil {
			for _, s := range b.Record {
				recorded = append(recorded, s.Version)
			}
		}
		var others int
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM "+ident+" WHERE version_id <> 0 AND NOT version_id = ANY($1)", recorded).Scan(&others); err != nil {
			return err
		}
		if others > 0 { // someone else migrated meanwhile: leave it alone
			return nil
		}
		if !existed {
			_, err := conn.ExecContext(ctx, "DROP TABLE "+ident)
			return err
		}
		_, err := conn.ExecContext(ctx, "DELETE FROM "+ident+" WHERE version_id = ANY($1)", recorded)
		return err
	})
}
