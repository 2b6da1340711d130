package inspect

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/amanat/dbops/spec"
)

// Postgres is the observed state of the stack's database.
type Postgres struct {
	Server         string `json:"server"`
	Version        string `json:"version,omitempty"`
	DatabaseSize   int64  `json:"databaseSize"`
	MaxConnections int    `json:"maxConnections,omitempty"`
	// Connections counts the server's client sessions by state; sessions
	// of other roles are "unknown" without pg_read_all_stats.
	Connections []Count `json:"connections"`
	// Tables are the largest user tables (TablesShown of TablesTotal).
	Tables      []Table `json:"tables"`
	TablesTotal int     `json:"tablesTotal"`
	// Migrations is the version table's level (nil without spec.postgres.migrations).
	Migrations *Migrations `json:"migrations,omitempty"`
	// StatStatements says whether pg_stat_statements can be read; when it
	// cannot, Statements is empty and StatStatementsNote says why.
	StatStatements     bool        `json:"statStatements"`
	StatStatementsNote string      `json:"statStatementsNote,omitempty"`
	Statements         []Statement `json:"slowestStatements"`
	Error              string      `json:"error,omitempty"`
}

// Count is a number of things in one state.
type Count struct {
	State string `json:"state"`
	Count int64  `json:"count"`
}

// Table is one table's live rows (pg_stat_user_tables.n_live_tup, an
// estimate) and total size (with indexes and TOAST).
type Table struct {
	Schema     string `json:"schema"`
	Name       string `json:"name"`
	LiveRows   int64  `json:"liveRows"`
	TotalBytes int64  `json:"totalBytes"`
}

// Migrations is the level of the stack's version table.
type Migrations struct {
	Format      string `json:"format"`
	Table       string `json:"table"`
	TableExists bool   `json:"tableExists"`
	Version     int64  `json:"version"`
	Level       string `json:"level"`
	Applied     int    `json:"applied"`
}

// Statement is one row of pg_stat_statements, by mean execution time.
type Statement struct {
	Query       string  `json:"query"`
	Calls       int64   `json:"calls"`
	MeanMillis  float64 `json:"meanMillis"`
	TotalMillis float64 `json:"totalMillis"`
	Rows        int64   `json:"rows"`
}

// maxTables bounds the tables listed; TablesTotal says how many there are.
const maxTables = 50

// maxQuery bounds the text of a statement.
const maxQuery = 500

func readPostgres(ctx context.Context, db *sql.DB, m *spec.Migrations, out *Postgres) error {
	if err := db.QueryRowContext(ctx, `SELECT current_setting('server_version'), pg_database_size(current_database()),
		current_setting('max_connections')::int, (SELECT count(*) FROM pg_stat_user_tables)`).
		Scan(&out.Version, &out.DatabaseSize, &out.MaxConnections, &out.TablesTotal); err != nil {
		return fmt.Errorf("database size: %w", err)
	}
	rows, err := db.QueryContext(ctx, `SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity
		WHERE backend_type = 'client backend' GROUP BY 1 ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("pg_stat_activity: %w", err)
	}
	out.Connections = []Count{}
	for rows.Next() {
		var c Count
		if err := rows.Scan(&c.State, &c.Count); err != nil {
			rows.Close()
			return err
		}
		out.Connections = append(out.Connections, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("pg_stat_activity: %w", err)
	}
	rows, err = db.QueryContext(ctx, `SELECT schemaname, relname, n_live_tup, pg_total_relation_size(relid)
		FROM pg_stat_user_tables ORDER BY 4 DESC, 1, 2 LIMIT $1`, maxTables)
	if err != nil {
		return fmt.Errorf("pg_stat_user_tables: %w", err)
	}
	out.Tables = []Table{}
	for rows.Next() {
		var t Table
		if err := rows.Scan(&t.Schema, &t.Name, &t.LiveRows, &t.TotalBytes); err != nil {
			rows.Close()
			return err
		}
		out.Tables = append(out.Tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("pg_stat_user_tables: %w", err)
	}
	if m != nil {
		if out.Migrations, err = migrationLevel(ctx, db, m); err != nil {
			return fmt.Errorf("migration level: %w", err)
		}
	}
	return readStatements(ctx, db, out)
}

// readStatements reads the 10 slowest statements by mean time, when
// pg_stat_statements is installed in the database and preloaded.
func readStatements(ctx context.Context, db *sql.DB, out *Postgres) error {
	out.Statements = []Statement{}
	var schema sql.NullString
	err := db.QueryRowContext(ctx, `SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_stat_statements'`).Scan(&schema)
	if errors.Is(err, sql.ErrNoRows) {
		out.StatStatementsNote = "pg_stat_statements is not installed in this database: add it to shared_preload_libraries (server restart), then CREATE EXTENSION pg_stat_statements"
		return nil
	}
	if err != nil {
		return fmt.Errorf("pg_extension: %w", err)
	}
	rows, err := db.QueryContext(ctx, `SELECT coalesce(query, ''), calls, mean_exec_time, total_exec_time, rows
		FROM `+schema.String+`.pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY mean_exec_time DESC LIMIT 10`)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) { // e.g. not in shared_preload_libraries: say so, not fail
			out.StatStatementsNote = "pg_stat_statements is installed but cannot be read: " + pe.Message
			return nil
		}
		return fmt.Errorf("pg_stat_statements: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s Statement
		if err := rows.Scan(&s.Query, &s.Calls, &s.MeanMillis, &s.TotalMillis, &s.Rows); err != nil {
			return err
		}
		s.Query = strings.Join(strings.Fields(s.Query), " ")
		if len(s.Query) > maxQuery {
			s.Query = strings.ToValidUTF8(s.Query[:maxQuery], "") + "…"
		}
		out.Statements = append(out.Statements, s)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("pg_stat_statements: %w", err)
	}
	out.StatStatements = true
	return nil
}
