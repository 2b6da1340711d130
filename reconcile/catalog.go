package reconcile

import (
	"context"
	"database/sql"

	"github.com/amanat/dbops/reconcile/risk"
)

// liveCatalog answers the risk analysis' questions about the live database
// with read-only catalog queries, each asked once per plan. Any query that
// fails counts as "the data may be there" (risky), never as "absent".
type liveCatalog struct {
	ctx     context.Context
	db      *sql.DB
	tables  map[risk.Table]risk.TableState
	columns map[[3]string]bool
	schemas map[string]bool
}

func newLiveCatalog(ctx context.Context, db *sql.DB) *liveCatalog {
	return &liveCatalog{ctx: ctx, db: db, tables: map[risk.Table]risk.TableState{},
		columns: map[[3]string]bool{}, schemas: map[string]bool{}}
}

// emptyCheck bounds the check for a first row: it waits for no lock held
// by another session for long, and a table whose scan for a first visible
// row takes longer (e.g. all rows deleted but not yet vacuumed) counts as
// holding rows.
const (
	emptyCheckLockTimeout      = "1s"
	emptyCheckStatementTimeout = "2s"
)

// Table is absent when to_regclass finds no relation under t's name (as
// the migration's session would resolve it), empty when a scan finds no row
// visible to the plan's snapshot, and has rows otherwise.
func (c *liveCatalog) Table(t risk.Table) risk.TableState {
	if st, ok := c.tables[t]; ok {
		return st
	}
	st := c.table(t)
	c.tables[t] = st
	return st
}

func (c *liveCatalog) table(t risk.Table) risk.TableState {
	var name sql.NullString
	var kind string
	err := c.db.QueryRowContext(c.ctx, `SELECT format('%I.%I', n.nspname, c.relname), c.relkind::text
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)`, t.String()).Scan(&name, &kind)
	switch {
	case err == sql.ErrNoRows:
		return risk.TableAbsent
	case err != nil || !name.Valid:
		return risk.TableHasRows
	case kind != "r" && kind != "p":
		return risk.TableHasRows // a view, foreign table...: not ours to judge
	}
	tx, err := c.db.BeginTx(c.ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return risk.TableHasRows
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(c.ctx, "SET LOCAL lock_timeout = '"+emptyCheckLockTimeout+"'"); err != nil {
		return risk.TableHasRows
	}
	if _, err := tx.ExecContext(c.ctx, "SET LOCAL statement_timeout = '"+emptyCheckStatementTimeout+"'"); err != nil {
		return risk.TableHasRows
	}
	var rows bool
	// Without ONLY: rows of partitions and inheritance children count.
	if err := tx.QueryRowContext(c.ctx, "SELECT EXISTS (SELECT 1 FROM "+name.String+")").Scan(&rows); err != nil || rows {
		return risk.TableHasRows
	}
	return risk.TableEmpty
}

// Column reports whether live table t has column col (not dropped).
func (c *liveCatalog) Column(t risk.Table, col string) bool {
	k := [3]string{t.Schema, t.Name, col}
	if v, ok := c.columns[k]; ok {
		return v
	}
	var exists bool
	err := c.db.QueryRowContext(c.ctx, `SELECT EXISTS (SELECT 1 FROM pg_attribute
		WHERE attrelid = to_regclass($1) AND attname = $2 AND attnum > 0 AND NOT attisdropped)`, t.String(), col).Scan(&exists)
	v := err != nil || exists
	c.columns[k] = v
	return v
}

// Schema reports whether schema name exists.
func (c *liveCatalog) Schema(name string) bool {
	if v, ok := c.schemas[name]; ok {
		return v
	}
	var exists bool
	err := c.db.QueryRowContext(c.ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", name).Scan(&exists)
	v := err != nil || exists
	c.schemas[name] = v
	return v
}

// Size is pg_total_relation_size of t; 0 when there is no such table.
func (c *liveCatalog) Size(t risk.Table) (int64, bool) {
	var n sql.NullInt64
	if err := c.db.QueryRowContext(c.ctx, "SELECT pg_total_relation_size(to_regclass($1))", t.String()).Scan(&n); err != nil {
		return 0, false
	}
	return n.Int64, true
}
