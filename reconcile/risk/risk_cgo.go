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
// migration holds no prior data, so no rule applies to it.
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
	a := &analyser{sizes: sizes, threshold: threshold, created: map[Table]bool{}}
	if err := a.run(sql, ""); err != nil {
		return nil, err
	}
	return a.findings, nil
}

// TablesIndexed lists, without duplicates, the existing tables on which sql
// builds an index without CONCURRENTLY: the tables whose size Migration will
// ask for.
func TablesIndexed(sql string) ([]Table, error) {
	a := &analyser{created: map[Table]bool{}}
	if err := a.run(sql, ""); err != nil {
		return nil, err
	}
	return a.indexed, nil
}

type analyser struct {
	sizes     func(schema, table string) (int64, bool)
	threshold int64
	created   map[Table]bool
	findings  []Finding
	indexed   []Table
}

// run parses sql and analyses each statement; where is "" at top level and
// " (in a DO block)" inside one.
func (a *analyser) run(sql, where string) error {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return parseError(sql, err)
	}
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

func (a *analyser) stmt(n *pg_query.Node, where string) error {
	switch s := n.GetNode().(type) {
	case *pg_query.Node_CreateStmt:
		if !s.CreateStmt.GetIfNotExists() {
			a.created[key(s.CreateStmt.GetRelation())] = true
		}
	case *pg_query.Node_CreateTableAsStmt:
		if !s.CreateTableAsStmt.GetIfNotExists() {
			a.created[key(s.CreateTableAsStmt.GetInto().GetRel())] = true
		}
	case *pg_query.Node_SelectStmt:
		if into := s.SelectStmt.GetIntoClause(); into != nil {
			a.created[key(into.GetRel())] = true
		}
	case *pg_query.Node_DropStmt:
		a.drop(s.DropStmt, where)
	case *pg_query.Node_TruncateStmt:
		for _, r := range s.TruncateStmt.GetRelations() {
			if t := key(r.GetRangeVar()); !a.isNew(t) {
				also := ""
				if s.TruncateStmt.GetBehavior() == pg_query.DropBehavior_DROP_CASCADE {
					also = " and those of every table referencing it (CASCADE)"
				}
				a.add(RuleTruncate, where, "TRUNCATE %s deletes all its rows%s", t, also)
			}
		}
	case *pg_query.Node_AlterTableStmt:
		a.alterTable(s.AlterTableStmt, where)
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
			if !a.isNew(t) {
				a.add(RuleDropTable, where, "DROP TABLE %s destroys its data", t)
			}
		}
	case pg_query.ObjectType_OBJECT_SCHEMA:
		if d.GetBehavior() != pg_query.DropBehavior_DROP_CASCADE {
			return
		}
		for _, o := range d.GetObjects() {
			a.add(RuleDropTable, where, "DROP SCHEMA %s CASCADE destroys every table in it", QuoteIdent(o.GetString_().GetSval()))
		}
	}
}

func (a *analyser) alterTable(s *pg_query.AlterTableStmt, where string) {
	if s.GetObjtype() != pg_query.ObjectType_OBJECT_TABLE {
		return
	}
	t := key(s.GetRelation())
	if a.isNew(t) {
		return
	}
	for _, c := range s.GetCmds() {
		cmd := c.GetAlterTableCmd()
		col := QuoteIdent(cmd.GetName())
		switch cmd.GetSubtype() {
		case pg_query.AlterTableType_AT_DropColumn:
			a.add(RuleDropColumn, where, "ALTER TABLE %s DROP COLUMN %s destroys the column's data", t, col)
		case pg_query.AlterTableType_AT_AlterColumnType:
			typ := typeName(cmd.GetDef().GetColumnDef().GetTypeName())
			a.add(RuleAlterColumnType, where, "ALTER TABLE %s ALTER COLUMN %s TYPE %s may rewrite the table and locks it (ACCESS EXCLUSIVE) meanwhile", t, col, typ)
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

// isNew reports whether t was created earlier in the migration; an
// unqualified name matches the same name in schema public.
func (a *analyser) isNew(t Table) bool {
	switch t.Schema {
	case "":
		return a.created[t] || a.created[Table{"public", t.Name}]
	case "public":
		return a.created[t] || a.created[Table{"", t.Name}]
	}
	return a.created[t]
}

// index records a blocking index build on t by the statement what.
func (a *analyser) index(t Table, where, what string) {
	if a.isNew(t) {
		return
	}
	if !slices.Contains(a.indexed, t) {
		a.indexed = append(a.indexed, t)
	}
	var size int64
	known := false
	if a.sizes != nil {
		size, known = a.sizes(t.Schema, t.Name)
	}
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
