// Package postgres observes and applies the goose migration level of a
// PostgreSQL database.
package postgres

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/amanat/dbops/spec"
)

// LockID is the advisory lock goose holds while migrating. It is goose's own
// default, set explicitly so that dbops and a goose CLI run against the same
// database wait for each other instead of migrating at once.
const LockID int64 = 4097083626

// Open returns a handle on the database at rawURL. A readOnly handle sets
// default_transaction_read_only, so the server itself refuses any write.
// Nothing is dialled until Ping or a query.
func Open(rawURL string, connectTimeout time.Duration, readOnly bool) (*sql.DB, error) {
	return open(rawURL, connectTimeout, readOnly, nil)
}

// open is Open with extra session parameters (e.g. lock_timeout).
func open(rawURL string, connectTimeout time.Duration, readOnly bool, params map[string]string) (*sql.DB, error) {
	if _, err := spec.ParsePostgres(rawURL); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: not a valid connection string %s", spec.Hidden)
	}
	if connectTimeout > 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	if readOnly {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
		// A plan runs each statement once, in one round trip (pgx's
		// default prepares it first: two round trips, and a server-side
		// statement, for a session that at fleet size is mostly fresh and
		// closed after the stack). Without statement caches a session kept
		// idle in dbops run's pool also holds less: pgx's default caches
		// (512 statements and 512 descriptions) cost ~67 KB per session.
		cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
		cfg.StatementCacheCapacity = 0
		cfg.DescriptionCacheCapacity = 0
	}
	cfg.RuntimeParams["application_name"] = "dbops"
	SkipRefusedTLS(cfg)
	for k, v := range params {
		cfg.RuntimeParams[k] = v
	}
	db := stdlib.OpenDB(*cfg, stdlib.OptionShouldPing(shouldPing))
	db.SetMaxOpenConns(4)
	return db, nil
}

// shouldPing checks a session idle for over a second before reusing it, as
// pgx does by default, but not one opened for the statement before (pgx
// counts a session never reused as idle forever): that ping was one round
// trip of every fresh session, a sixth of a no-change stack cycle's.
func shouldPing(_ context.Context, p stdlib.ShouldPingParams) bool {
	const neverReused = 100 * 365 * 24 * time.Hour
	return p.IdleDuration > time.Second && p.IdleDuration < neverReused
}

// Server names the server of rawURL for messages from its parsed fields:
// host:port/db, no credentials.
// Remembered per URL: parsing one (pgconn looks up the OS user and reads
// the environment) was a twentieth of a no-change cycle's CPU at fleet
// size. The URLs are the stacks'; the map is emptied past maxServers so
// that URLs of old revisions (rotated passwords) do not accumulate.
func Server(rawURL string) string {
	serversMu.Lock()
	s, ok := servers[rawURL]
	serversMu.Unlock()
	if ok {
		return s
	}
	s = spec.PostgresServer(rawURL)
	serversMu.Lock()
	if len(servers) >= maxServers {
		clear(servers)
	}
	servers[rawURL] = s
	serversMu.Unlock()
	return s
}

const maxServers = 4096

var (
	serversMu sync.Mutex
	servers   = map[string]string{} // URL -> Server(URL)
)

// State is the migration level observed in a database.
type State struct {
	// Applied lists the applied versions, ascending, without goose's row 0.
	Applied []int64 `json:"applied"`
}

// Version is the highest applied version, 0 when none.
func (s State) Version() int64 {
	if len(s.Applied) == 0 {
		return 0
	}
	return s.Applied[len(s.Applied)-1]
}

// Observe reads goose's version table with read-only queries. A missing
// table means version 0; unlike goose's Provider, it never creates it.
func Observe(ctx context.Context, db *sql.DB, table string) (State, error) {
	live, err := observe(ctx, db, table)
	return live.State, err
}

// observe is Observe that also says whether the table and dbops' checksum
// ledger beside it exist, and reads the ledger with goose's rows when it
// does. Two statements however many tables: at fleet size a fresh
// session's statements (each pays catalog look-ups in a new backend) are
// most of a no-change cycle's server time after the login itself.
func observe(ctx context.Context, db *sql.DB, table string) (Live, error) {
	var live Live
	if err := db.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL", table, ident(LedgerTable(table))).
		Scan(&live.TableExists, &live.LedgerExists); err != nil {
		return Live{}, err
	}
	if !live.TableExists {
		return live, nil
	}
	if live.LedgerExists {
		err := readBoth(ctx, db, table, &live)
		var pe *pgconn.PgError
		if err == nil || !errors.As(err, &pe) || pe.Code != "42501" {
			return live, err
		}
		// No SELECT on the ledger (e.g. read-only CI credentials): goose's
		// rows alone; the plan says what it could not verify.
		live.Applied, live.Ledger, live.LedgerErr = nil, nil, err
	}
	rows, err := db.QueryContext(ctx, "SELECT version_id, is_applied FROM "+ident(table)+" ORDER BY id")
	if err != nil {
		return live, fmt.Errorf("read %s: %w", table, err)
	}
	defer rows.Close()
	applied := map[int64]bool{}
	for rows.Next() {
		var v int64
		var ok bool
		if err := rows.Scan(&v, &ok); err != nil {
			return live, err
		}
		applied[v] = ok // a later row for the same version wins, as in goose
	}
	if err := rows.Err(); err != nil {
		return live, err
	}
	live.Applied = appliedVersions(applied)
	return live, nil
}

// readBoth reads goose's rows and the ledger in one statement. It leaves
// ordering goose's rows to the client: a sort (and the casts) cost a fresh
// backend catalog look-ups that weigh more than sorting a few hundred rows.
func readBoth(ctx context.Context, db *sql.DB, table string, live *Live) error {
	rows, err := db.QueryContext(ctx, `SELECT false, version_id, is_applied, NULL, NULL, NULL, NULL, id FROM `+ident(table)+`
		UNION ALL SELECT true, version_id, true, file, sha256, source, recorded_at, 0 FROM `+ident(LedgerTable(table)))
	if err != nil {
		return fmt.Errorf("read %s and %s: %w", table, LedgerTable(table), err)
	}
	defer rows.Close()
	type gooseRow struct {
		id, version int64
		applied     bool
	}
	var goose []gooseRow
	ledger := map[int64]Checksum{}
	for rows.Next() {
		var isLedger, ok bool
		var id, v int64
		var file, sum, source sql.NullString
		var at sql.NullTime
		if err := rows.Scan(&isLedger, &v, &ok, &file, &sum, &source, &at, &id); err != nil {
			return fmt.Errorf("read %s and %s: %w", table, LedgerTable(table), err)
		}
		if isLedger {
			ledger[v] = Checksum{Version: v, File: file.String, SHA256: sum.String, Source: source.String, RecordedAt: at.Time}
		} else {
			goose = append(goose, gooseRow{id, v, ok})
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s and %s: %w", table, LedgerTable(table), err)
	}
	slices.SortFunc(goose, func(a, b gooseRow) int { return cmp.Compare(a.id, b.id) })
	applied := map[int64]bool{}
	for _, r := range goose {
		applied[r.version] = r.applied // a later row for the same version wins, as in goose
	}
	live.Applied, live.Ledger = appliedVersions(applied), ledger
	return nil
}

// appliedVersions lists the applied versions of goose's rows, ascending,
// without its row 0.
func appliedVersions(applied map[int64]bool) []int64 {
	var out []int64
	for v, ok := range applied {
		if ok && v != 0 {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

// Step is one migration to run.
type Step struct {
	Version int64  `json:"version"`
	File    string `json:"file"`
	Name    string `json:"name,omitempty"` // as shown: goose's file name, drizzle's tag
	Down    bool   `json:"down,omitempty"`
	// Retries counts the runs again after a lock timeout (in results).
	Retries int `json:"retries,omitempty"`
}

// Plan takes a database from one version to another.
type Plan struct {
	From  int64  `json:"from"`
	To    int64  `json:"to"`
	Steps []Step `json:"steps,omitempty"`
	// Baseline, when set, is recorded as applied before the steps run.
	Baseline *Baseline `json:"baseline,omitempty"`
}

// Sentinel errors of Diff.
var (
	ErrDownNotAllowed = errors.New("target is below the live version")
	ErrMissingFiles   = errors.New("applied migrations are missing from the migrations folder")
	ErrOutOfOrder     = errors.New("pending migration below the live version")
)

// Diff plans the steps from the observed state to m's target, given the
// migrations available in m.Path (version → file name).
func Diff(m *spec.Migrations, available map[int64]string, st State) (Plan, error) {
	from := st.Version()
	var missing []string
	appliedSet := map[int64]bool{}
	for _, v := range st.Applied {
		appliedSet[v] = true
		if _, ok := available[v]; !ok {
			missing = append(missing, strconv.FormatInt(v, 10))
		}
	}
	if len(missing) > 0 {
		return Plan{}, fmt.Errorf("%w: version %s applied in the database but not in %s; restore the files or point migrations.dir at the right folder",
			ErrMissingFiles, strings.Join(missing, ", "), m.Dir)
	}
	to := m.Target.Version
	if !m.Target.Pinned {
		to = 0
		for v := range available {
			to = max(to, v)
		}
	}
	p := Plan{From: from, To: to}
	versions := make([]int64, 0, len(available))
	for v := range available {
		versions = append(versions, v)
	}
	slices.Sort(versions)
	if to < from {
		if !m.AllowDown {
			return Plan{}, fmt.Errorf("%w: target %d is below the live version %d; set migrations.allowDown: true to migrate down (the plan then lists each down migration)",
				ErrDownNotAllowed, to, from)
		}
		for i := len(st.Applied) - 1; i >= 0 && st.Applied[i] > to; i-- {
			v := st.Applied[i]
			p.Steps = append(p.Steps, Step{Version: v, File: available[v], Down: true})
		}
		return p, nil
	}
	for _, v := range versions {
		if v > to || appliedSet[v] {
			continue
		}
		if v < from {
			return Plan{}, fmt.Errorf("%w: %s (version %d) is not applied but the database is already at version %d; renumber it above %d",
				ErrOutOfOrder, available[v], v, from, from)
		}
		p.Steps = append(p.Steps, Step{Version: v, File: available[v]})
	}
	return p, nil
}
