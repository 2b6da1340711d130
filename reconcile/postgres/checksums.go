package postgres

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amanat/dbops/spec"
)

// goose records no checksum, so dbops keeps its own ledger beside goose's
// table: one row per applied migration with the SHA-256 of its file. The
// ledger is never goose's table, so the goose CLI keeps working.

// Sources of a ledger row.
const (
	// SourceApplied: dbops ran the migration with exactly this file.
	SourceApplied = "applied"
	// SourceAdoption: the migration was applied before dbops kept a
	// ledger; the file's checksum was recorded when dbops first met it.
	SourceAdoption = "adoption"
	// SourceRepair: re-recorded by `dbops migrations repair`.
	SourceRepair = "repair"
)

// Checksum is one ledger row.
type Checksum struct {
	Version    int64
	File       string
	SHA256     string
	Source     string
	RecordedAt time.Time
}

// KeepsLedger reports whether dbops keeps its checksum ledger for m: goose
// records no checksum; drizzle's hash column does that job (its Diff
// refuses an applied migration whose file changed).
func KeepsLedger(m *spec.Migrations) bool { return m.Format != spec.FormatDrizzle }

// LedgerTable is the ledger's name for goose table: beside it, in the same
// schema, named after it (goose_db_version → goose_db_version_dbops_checksums).
func LedgerTable(gooseTable string) string {
	const suffix = "_dbops_checksums"
	schema, name := "", gooseTable
	if i := strings.IndexByte(gooseTable, '.'); i >= 0 {
		schema, name = gooseTable[:i+1], gooseTable[i+1:]
	}
	if len(name)+len(suffix) > 63 { // PostgreSQL's identifier limit
		sum := sha256.Sum256([]byte(name))
		name = name[:63-len(suffix)-9] + "_" + hex.EncodeToString(sum[:4])
	}
	return schema + name + suffix
}

func ident(table string) string {
	return pgx.Identifier(strings.SplitN(table, ".", 2)).Sanitize()
}

// FileSum is the SHA-256 (hex) of a migration file's full text.
func FileSum(m *spec.Migrations, file string) (string, error) {
	b, err := os.ReadFile(filepath.Join(m.Path, file))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// ReadLedger reads the ledger of goose table with read-only queries. A
// missing ledger is "nothing recorded" (nil, nil); plan never creates it.
func ReadLedger(ctx context.Context, db *sql.DB, gooseTable string) (map[int64]Checksum, error) {
	var exists bool
	if err := db.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL", ident(LedgerTable(gooseTable))).Scan(&exists); err != nil {
		return nil, err
	}
	return ReadLedgerOf(ctx, db, gooseTable, exists)
}

// ReadLedgerOf is ReadLedger when whether the ledger exists is known (the
// goose engine's Observe reads it with the version table's).
func ReadLedgerOf(ctx context.Context, db *sql.DB, gooseTable string, exists bool) (map[int64]Checksum, error) {
	ledger := LedgerTable(gooseTable)
	if !exists {
		return nil, nil
	}
	rows, err := db.QueryContext(ctx, "SELECT version_id, file, sha256, source, recorded_at FROM "+ident(ledger))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ledger, err)
	}
	defer rows.Close()
	out := map[int64]Checksum{}
	for rows.Next() {
		var c Checksum
		if err := rows.Scan(&c.Version, &c.File, &c.SHA256, &c.Source, &c.RecordedAt); err != nil {
			return nil, fmt.Errorf("read %s: %w", ledger, err)
		}
		out[c.Version] = c
	}
	return out, rows.Err()
}

// ensureLedger creates the ledger if it is missing.
func ensureLedger(ctx context.Context, tx *sql.Tx, gooseTable string) error {
	_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+ident(LedgerTable(gooseTable))+` (
		version_id  bigint      PRIMARY KEY,
		file        text        NOT NULL,
		sha256      text        NOT NULL,
		source      text        NOT NULL CHECK (source IN ('applied', 'adoption', 'repair')),
		recorded_at timestamptz NOT NULL DEFAULT now()
	)`)
	if err != nil {
		return fmt.Errorf("create %s: %w", LedgerTable(gooseTable), err)
	}
	return nil
}

// LedgerError: migrations ran (or failed: Migrate), but the ledger could
// not record their checksums; the next plan records them at adoption.
type LedgerError struct {
	Err     error
	Migrate error // the migrations' own error, if any
}

func (e *LedgerError) Error() string {
	msg := "checksums of the migrations run were not recorded (the next plan records them at adoption): " + e.Err.Error()
	if e.Migrate != nil {
		msg = e.Migrate.Error() + "; " + msg
	}
	return msg
}

// Unwrap lets errors.As find the migrations' *MigrationError too.
func (e *LedgerError) Unwrap() []error {
	if e.Migrate == nil {
		return []error{e.Err}
	}
	return []error{e.Migrate, e.Err}
}

// ledgerLock serialises writers of one database's ledgers (apply, repair)
// for the length of their transaction.
const ledgerLock = LockID + 1

// Record writes the ledger in one transaction, creating it when missing:
// every version in versions (version → file) gets the current checksum of
// its file from source. With overwrite false, versions already recorded
// keep their row (backfill); with true, rows are replaced (after applying,
// or repair). Down lists versions rolled back, whose rows are deleted.
// It returns the rows written.
func Record(ctx context.Context, db *sql.DB, m *spec.Migrations, versions map[int64]string, source string, overwrite bool, down []int64) ([]Checksum, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", ledgerLock); err != nil {
		return nil, err
	}
	if err := ensureLedger(ctx, tx, m.Table); err != nil {
		return nil, err
	}
	table := ident(LedgerTable(m.Table))
	conflict := "DO NOTHING"
	if overwrite {
		conflict = "DO UPDATE SET file = excluded.file, sha256 = excluded.sha256, source = excluded.source, recorded_at = excluded.recorded_at"
	}
	// One statement for all rows: an apply of 200 migrations records them
	// in one round trip, not 200.
	byVersion := map[int64]Checksum{}
	var vs []int64
	var files, sums []string
	for _, v := range slices.Sorted(maps.Keys(versions)) {
		file := versions[v]
		sum, err := FileSum(m, file)
		if err != nil {
			return nil, err
		}
		byVersion[v] = Checksum{Version: v, File: file, SHA256: sum, Source: source}
		vs, files, sums = append(vs, v), append(files, file), append(sums, sum)
	}
	var out []Checksum
	if len(vs) > 0 {
		rows, err := tx.QueryContext(ctx, "INSERT INTO "+table+" AS l (version_id, file, sha256, source) "+
			"SELECT v, f, s, $4 FROM unnest($1::bigint[], $2::text[], $3::text[]) AS x(v, f, s) "+
			"ON CONFLICT (version_id) "+conflict+" RETURNING version_id, recorded_at", vs, files, sums, source)
		if err != nil {
			return nil, fmt.Errorf("record %d migration(s) in %s: %w", len(vs), LedgerTable(m.Table), err)
		}
		for rows.Next() {
			var v int64
			var at time.Time
			if err := rows.Scan(&v, &at); err != nil {
				rows.Close()
				return nil, err
			}
			c := byVersion[v]
			c.RecordedAt = at
			out = append(out, c) // versions already recorded (DO NOTHING) return no row: kept
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("record %d migration(s) in %s: %w", len(vs), LedgerTable(m.Table), err)
		}
	}
	for _, v := range down {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE version_id = $1", v); err != nil {
			return nil, err
		}
	}
	return out, tx.Commit()
}
