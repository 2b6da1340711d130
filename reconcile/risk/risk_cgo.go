//go:build cgo

package risk

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pganalyze/pg_query_go/v6/parser"
)

// Migration analyses the SQL of one migration (one goose section) and
// returns its risky statements, in order. A table created earlier in the same
// migration holds no prior data, so no rule applies to it; every other table
// is taken to exist and hold rows (NewSequence judges against the live
// database instead).
//
// CREATE INDEX without CONCURRENTLY (and ALTER TABLE ... ADD PRIMARY KEY /
// UNIQUE / EXCLUDE, which build an index the same way) is risky when sizes
// reports the table over threshold, or when its size is unknown. sizes may be
// nil (every size unknown); a caller whose size query finds no such table
// (to_regclass is NULL) should report 0, true: an earlier pending migration
// creates it.
//
// Statements of DO blocks in PL/pgSQL are analysed too, including EXECUTE of
// a string literal; EXECUTE of a computed string, a DO block in another
// language and unparseable SQL are errors ("cannot analyse"). Bodies of
// CREATE FUNCTION/PROCEDURE do not run at migration time and are skipped.
func Migration(sql string, sizes func(schema, table string) (int64, bool), threshold int64) ([]Finding, error) {
	return NewSequence(legacy{sizes}, threshold).Migration(sql)
}

// Migration analyses the SQL of the next pending migration of the plan, as
// the package-level Migration does, but judging each destructive statement
// against the live database and the migrations analysed before it.
func (s *Sequence) Migration(sql string) ([]Finding, error) {
	if Inert(sql) {
		return nil, nil
	}
	return s.analyse(sql)
}

// analyse is Migration without the Inert pre-check.
func (s *Sequence) analyse(sql string) ([]Finding, error) {
	a := &analyser{cat: s.cat, threshold: s.threshold, names: s.names}
	if err := a.run(sql, ""); err != nil {
		return nil, err
	}
	return a.findings, nil
}

// TablesIndexed lists, without duplicates, the existing tables on which sql
// builds an index without CONCURRENTLY: the tables whose size Migration will
// ask for.
func TablesIndexed(sql string) ([]Table, error) {
	a := &analyser{cat: legacy{}, names: newNames()}
	if err := a.run(sql, ""); err != nil {
		return nil, err
	}
	return a.indexed, nil
}

type analyser struct {
	cat       Catalog
	threshold int64
	names     *names
	findings  []Finding
	indexed   []Table
}

// run parses sql and analyses each statement; where is "" at top level and
// " (in a DO block)" inside one.
func (a *analyser) run(sql, where string) error {
	tree, err := parse(sql)
	if err != nil {
		return parseError(sql, err)
	}
	return a.tree(tree, where)
}

// tree analyses each statement of a parsed (and pruned) tree.
func (a *analyser) tree(tree *pg_query.ParseResult, where string) error {
	for _, raw := range tree.GetStmts() {
		if err := a.stmt(raw.GetStmt(), where); err != nil {
			return err
		}
	}
	return nil
}

func (a *analyser) add(rule, where, format string, args ...any) {
	a.findings = append(a.findings, Finding{rule, fmt.Sprintf(format, args...) + where})
}

// stmt analyses one statement. prune (parse_cgo.go) keeps of each tree
// what stmt reads: a case added here needs its node kept there.
func (a *analyser) stmt(n *pg_query.Node, where string) error {
	switch s := n.GetNode().(type) {
	case *pg_query.Node_CreateStmt:
		a.create(key(s.CreateStmt.GetRelation()), s.CreateStmt.GetIfNotExists())
	case *pg_query.Node_CreateTableAsStmt:
		a.create(key(s.CreateTableAsStmt.GetInto().GetRel()), s.CreateTableAsStmt.GetIfNotExists())
	case *pg_query.Node_SelectStmt:
		if into := s.SelectStmt.GetIntoClause(); into != nil {
			a.create(key(into.GetRel()), false)
		}
	case *pg_query.Node_CreateSchemaStmt:
		if name := s.CreateSchemaStmt.GetSchemaname(); !s.CreateSchemaStmt.GetIfNotExists() || a.schemaGone(name) {
			a.names.setSchema(name, originCreated)
		}
	case *pg_query.Node_DropStmt:
		a.drop(s.DropStmt, where)
	case *pg_query.Node_TruncateStmt:
		cascade := s.TruncateStmt.GetBehavior() == pg_query.DropBehavior_DROP_CASCADE
		for _, r := range s.TruncateStmt.GetRelations() {
			t := key(r.GetRangeVar())
			switch _, st := a.liveTable(t); {
			case st == TableHasRows && cascade:
				a.add(RuleTruncate, where, "TRUNCATE %s deletes all its rows and those of every table referencing it (CASCADE)", t)
			case st == TableHasRows:
				a.add(RuleTruncate, where, "TRUNCATE %s deletes all its rows", t)
			case st == TableEmpty && cascade:
				// A referencing table may hold rows (NULL keys) even so.
				a.add(RuleTruncate, where, "TRUNCATE %s CASCADE deletes all rows of every table referencing it", t)
			}
		}
	case *pg_query.Node_AlterTableStmt:
		a.alterTable(s.AlterTableStmt, where)
	case *pg_query.Node_RenameStmt:
		a.rename(s.RenameStmt)
	case *pg_query.Node_AlterObjectSchemaStmt:
		if o := s.AlterObjectSchemaStmt; o.GetObjectType() == pg_query.ObjectType_OBJECT_TABLE {
			from := key(o.GetRelation())
			a.move(from, Table{o.GetNewschema(), from.Name})
		}
	case *pg_query.Node_IndexStmt:
		if ix := s.IndexStmt; !ix.GetConcurrent() {
			what := "CREATE INDEX"
			if name := ix.GetIdxname(); name != "" {
				what += " " + QuoteIdent(name)
			}
			a.index(key(ix.GetRelation()), where, what)
		}
	case *pg_query.Node_DoStmt:
		return a.do(s.DoStmt, where)
	}
	return nil
}

// create records that t is created by this statement: always, unless IF NOT
// EXISTS finds an existing table (which then keeps its data).
func (a *analyser) create(t Table, ifNotExists bool) {
	if ifNotExists {
		if _, st := a.liveTable(t); st != TableAbsent {
			return
		}
	}
	a.names.setTable(t, origin{kind: originCreated})
}

// liveTable resolves t as the pending migrations analysed so far left it:
// the live table it names (after renames) and what that holds. A table
// created or dropped by a pending migration is TableAbsent: no data that
// exists now can be lost through it.
func (a *analyser) liveTable(t Table) (Table, TableState) {
	o := a.names.table(t)
	if o.kind != originLive {
		return Table{}, TableAbsent
	}
	return o.live, a.cat.Table(o.live)
}

// move records ALTER TABLE from RENAME TO / SET SCHEMA: to now names
// what from named.
func (a *analyser) move(from, to Table) {
	o := a.names.table(from)
	a.names.setTable(to, o)
	a.names.setTable(from, origin{kind: originGone})
}

func (a *analyser) rename(r *pg_query.RenameStmt) {
	switch r.GetRenameType() {
	case pg_query.ObjectType_OBJECT_TABLE:
		from := key(r.GetRelation())
		a.move(from, Table{from.Schema, r.GetNewname()})
	case pg_query.ObjectType_OBJECT_COLUMN:
		if r.GetRelationType() != pg_query.ObjectType_OBJECT_TABLE {
			return
		}
		o := a.names.table(key(r.GetRelation()))
		if o.kind != originLive {
			return // every column of a new table is new
		}
		a.names.setColumn(o.live, r.GetNewname(), a.names.column(o.live, r.GetSubname()))
		a.names.setColumn(o.live, r.GetSubname(), origin{kind: originGone})
	case pg_query.ObjectType_OBJECT_SCHEMA:
		a.names.setSchema(r.GetNewname(), a.names.schema(r.GetSubname()))
		a.names.setSchema(r.GetSubname(), originGone)
	}
}

// schemaGone reports whether schema name does not exist at this point.
func (a *analyser) schemaGone(name string) bool {
	switch a.names.schema(name) {
	case originCreated:
		return false
	case originGone:
		return true
	}
	return !a.cat.Schema(name)
}

func (a *analyser) drop(d *pg_query.DropStmt, where string) {
	switch d.GetRemoveType() {
	case pg_query.ObjectType_OBJECT_TABLE:
		for _, o := range d.GetObjects() {
			var names []string
			for _, item := range o.GetList().GetItems() {
				names = append(names, item.GetString_().GetSval())
			}
			var t Table
			switch len(names) {
			case 0:
				continue
			case 1:
				t = Table{Name: names[0]}
			default:
				t = Table{names[len(names)-2], names[len(names)-1]}
			}
			if _, st := a.liveTable(t); st == TableHasRows {
				a.add(RuleDropTable, where, "DROP TABLE %s destroys its data", t)
			}
			a.names.setTable(t, origin{kind: originGone})
		}
	case pg_query.ObjectType_OBJECT_SCHEMA:
		for _, o := range d.GetObjects() {
			name := o.GetString_().GetSval()
			if d.GetBehavior() == pg_query.DropBehavior_DROP_CASCADE && a.names.schema(name) == originLive && a.cat.Schema(name) {
				a.add(RuleDropTable, where, "DROP SCHEMA %s CASCADE destroys every table in it", QuoteIdent(name))
			}
			a.names.setSchema(name, originGone)
		}
	}
}

func (a *analyser) alterTable(s *pg_query.AlterTableStmt, where string) {
	if s.GetObjtype() != pg_query.ObjectType_OBJECT_TABLE {
		return
	}
	t := key(s.GetRelation())
	o := a.names.table(t)
	if o.kind != originLive {
		return // created by a pending migration, or gone: no data of now
	}
	live := o.live
	// Asked only for destructive commands: the check may scan the table.
	hasRows := func() bool { return a.cat.Table(live) == TableHasRows }
	for _, c := range s.GetCmds() {
		cmd := c.GetAlterTableCmd()
		col := QuoteIdent(cmd.GetName())
		switch cmd.GetSubtype() {
		case pg_query.AlterTableType_AT_AddColumn:
			name := cmd.GetDef().GetColumnDef().GetColname()
			if !cmd.GetMissingOk() || !a.columnExists(live, name) {
				a.names.setColumn(live, name, origin{kind: originCreated})
			}
		case pg_query.AlterTableType_AT_DropColumn:
			co := a.names.column(live, cmd.GetName())
			if co.kind == originLive && a.cat.Column(live, co.col) && hasRows() {
				a.add(RuleDropColumn, where, "ALTER TABLE %s DROP COLUMN %s destroys the column's data", t, col)
			}
			a.names.setColumn(live, cmd.GetName(), origin{kind: originGone})
		case pg_query.AlterTableType_AT_AlterColumnType:
			// Even a column added by a pending migration makes the table
			// rewrite: only an empty table, or a missing column, is safe.
			if a.columnExists(live, cmd.GetName()) && hasRows() {
				typ := typeName(cmd.GetDef().GetColumnDef().GetTypeName())
				a.add(RuleAlterColumnType, where, "ALTER TABLE %s ALTER COLUMN %s TYPE %s may rewrite the table and locks it (ACCESS EXCLUSIVE) meanwhile", t, col, typ)
			}
		case pg_query.AlterTableType_AT_AddConstraint:
			con := cmd.GetDef().GetConstraint()
			if con.GetIndexname() != "" {
				continue // USING INDEX: the index already exists
			}
			switch con.GetContype() {
			case pg_query.ConstrType_CONSTR_PRIMARY:
				a.index(t, where, "ALTER TABLE "+t.String()+" ADD PRIMARY KEY")
			case pg_query.ConstrType_CONSTR_UNIQUE:
				a.index(t, where, "ALTER TABLE "+t.String()+" ADD UNIQUE")
			case pg_query.ConstrType_CONSTR_EXCLUSION:
				a.index(t, where, "ALTER TABLE "+t.String()+" ADD EXCLUDE")
			}
		}
	}
}

// columnExists reports whether column name of live table t exists at this
// point of the plan.
func (a *analyser) columnExists(t Table, name string) bool {
	switch co := a.names.column(t, name); co.kind {
	case originCreated:
		return true
	case originLive:
		return a.cat.Column(t, co.col)
	}
	return false
}

// index records a blocking index build on t by the statement what.
func (a *analyser) index(t Table, where, what string) {
	live, st := a.liveTable(t)
	if st == TableAbsent {
		return // created by a pending migration: empty when indexed
	}
	if !slices.Contains(a.indexed, live) {
		a.indexed = append(a.indexed, live)
	}
	size, known := a.cat.Size(live)
	const effect = "without CONCURRENTLY: writes to the table are blocked while it builds"
	switch {
	case !known:
		a.add(RuleCreateIndexBlocking, where, "%s builds an index on %s (size unknown) %s", what, t, effect)
	case size > a.threshold:
		a.add(RuleCreateIndexBlocking, where, "%s builds an index on %s (%s, over %s) %s", what, t, formatBytes(uint64(size)), formatBytes(uint64(a.threshold)), effect)
	}
}

// do analyses the statements of a PL/pgSQL DO block.
func (a *analyser) do(d *pg_query.DoStmt, where string) error {
	body, lang := "", "plpgsql"
	for _, arg := range d.GetArgs() {
		e := arg.GetDefElem()
		switch e.GetDefname() {
		case "as":
			body = e.GetArg().GetString_().GetSval()
		case "language":
			lang = e.GetArg().GetString_().GetSval()
		}
	}
	if lang != "plpgsql" {
		return fmt.Errorf("cannot analyse a DO block in language %s", lang)
	}
	tag := "$dbops$"
	for i := 1; strings.Contains(body, tag); i++ {
		tag = fmt.Sprintf("$dbops%d$", i)
	}
	fn := "CREATE FUNCTION dbops_do() RETURNS void LANGUAGE plpgsql AS " + tag + body + tag
	js, err := pg_query.ParsePlPgSqlToJSON(fn)
	if err != nil {
		return fmt.Errorf("DO block: %w", err)
	}
	stmts, err := plpgsqlStatements(js)
	if err != nil {
		return fmt.Errorf("DO block: %w", err)
	}
	for _, s := range stmts {
		if s.dynamic {
			lit, ok := stringLiteral(s.sql)
			if !ok {
				return fmt.Errorf("DO block: cannot analyse EXECUTE %s: the SQL is computed at run time", s.sql)
			}
			s.sql = lit
		}
		if err := a.run(s.sql, " (in a DO block)"); err != nil {
			return fmt.Errorf("DO block: %w", err)
		}
	}
	return nil
}

// stringLiteral returns the value of expr when it is a single string constant.
func stringLiteral(expr string) (string, bool) {
	tree, err := pg_query.Parse("SELECT " + expr)
	if err != nil || len(tree.GetStmts()) != 1 {
		return "", false
	}
	targets := tree.GetStmts()[0].GetStmt().GetSelectStmt().GetTargetList()
	if len(targets) != 1 {
		return "", false
	}
	c := targets[0].GetResTarget().GetVal().GetAConst()
	if c == nil || c.GetSval() == nil {
		return "", false
	}
	return c.GetSval().GetSval(), true
}

// key is the Table of a RangeVar.
func key(r *pg_query.RangeVar) Table {
	return Table{r.GetSchemaname(), r.GetRelname()}
}

// typeName renders a column type as written, without the pg_catalog prefix,
// e.g. numeric(12,2) or varchar(20)[].
func typeName(t *pg_query.TypeName) string {
	var names []string
	for _, n := range t.GetNames() {
		if s := n.GetString_().GetSval(); s != "pg_catalog" {
			names = append(names, s)
		}
	}
	out := strings.Join(names, ".")
	var mods []string
	for _, m := range t.GetTypmods() {
		switch c := m.GetAConst(); {
		case c.GetIval() != nil:
			mods = append(mods, fmt.Sprint(c.GetIval().GetIval()))
		case c.GetSval() != nil:
			mods = append(mods, c.GetSval().GetSval())
		}
	}
	if len(mods) > 0 {
		out += "(" + strings.Join(mods, ",") + ")"
	}
	return out + strings.Repeat("[]", len(t.GetArrayBounds()))
}

// parseError adds the line number to a parser error.
func parseError(sql string, err error) error {
	var pe *parser.Error
	if !errors.As(err, &pe) || pe.Cursorpos <= 0 {
		return fmt.Errorf("cannot parse SQL: %w", err)
	}
	line, pos := 1, 1
	for _, r := range sql {
		if pos >= pe.Cursorpos {
			break
		}
		if r == '\n' {
			line++
		}
		pos++
	}
	if what, ok := pg18Construct(sql, pe.Cursorpos); ok {
		return &PG18SyntaxError{Construct: what, Line: line, Err: err}
	}
	return fmt.Errorf("cannot parse SQL: line %d: %w", line, err)
}
