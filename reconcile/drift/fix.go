package drift

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// ident quotes a shown name ("users", "audit.log") as SQL.
func ident(name string) string { return pgx.Identifier(strings.Split(name, ".")).Sanitize() }

// split splits "table.member" (the table possibly schema-qualified).
func split(name string) (table, member string) {
	i := strings.LastIndex(name, ".")
	return name[:i], name[i+1:]
}

// fixSQL is the SQL that would make the live object match the migrations,
// for the item's report. o is the object whose definition it needs (the
// expected one, or the live one for an extra object). It returns "" where
// no statement can be derived safely (a changed table or column type, a
// missing table): those need a migration written by a human.
func fixSQL(it Item, o Object) string {
	switch o.Kind {
	case "index":
		switch it.Change {
		case Extra:
			return "DROP INDEX " + ident(o.Name) + ";"
		case Missing:
			return o.Def + ";"
		case Changed:
			return "DROP INDEX " + ident(o.Name) + ";\n" + o.Def + ";"
		}
	case "trigger":
		table, name := split(o.Name)
		drop := "DROP TRIGGER " + pgx.Identifier{name}.Sanitize() + " ON " + ident(table) + ";"
		switch it.Change {
		case Extra:
			return drop
		case Missing:
			return triggerDef(o.Def) + ";"
		case Changed:
			return drop + "\n" + triggerDef(o.Def) + ";"
		}
	case "constraint":
		table, name := split(o.Name)
		drop := "ALTER TABLE " + ident(table) + " DROP CONSTRAINT " + pgx.Identifier{name}.Sanitize() + ";"
		add := "ALTER TABLE " + ident(table) + " ADD CONSTRAINT " + pgx.Identifier{name}.Sanitize() + " " + o.Def + ";"
		switch it.Change {
		case Extra:
			return drop
		case Missing:
			return add
		case Changed:
			return drop + "\n" + add
		}
	case "column":
		table, name := split(o.Name)
		switch it.Change {
		case Extra:
			return "ALTER TABLE " + ident(table) + " DROP COLUMN " + pgx.Identifier{name}.Sanitize() + ";"
		case Missing:
			return "ALTER TABLE " + ident(table) + " ADD COLUMN " + pgx.Identifier{name}.Sanitize() + " " + o.Def + ";"
		}
	case "view":
		switch it.Change {
		case Extra:
			return "DROP VIEW " + ident(o.Name) + ";"
		default:
			return "CREATE OR REPLACE VIEW " + ident(o.Name) + " AS\n" + o.Def
		}
	case "function", "procedure":
		switch it.Change {
		case Extra:
			return "DROP " + strings.ToUpper(o.Kind) + " " + o.Name + ";"
		default:
			return strings.TrimSpace(o.Def) + ";"
		}
	case "table":
		if it.Change == Extra {
			return "DROP TABLE " + ident(o.Name) + ";"
		}
	case "extension":
		switch it.Change {
		case Extra:
			return "DROP EXTENSION " + pgx.Identifier{o.Name}.Sanitize() + ";"
		case Missing:
			return "CREATE EXTENSION " + pgx.Identifier{o.Name}.Sanitize() + " VERSION '" + o.Def + "';"
		case Changed:
			return "ALTER EXTENSION " + pgx.Identifier{o.Name}.Sanitize() + " UPDATE TO '" + o.Def + "';"
		}
	}
	return ""
}

// triggerDef drops the enabled-state note Read appends.
func triggerDef(def string) string {
	if i := strings.LastIndex(def, " ("); i > 0 && strings.HasSuffix(def, ")") && !strings.HasSuffix(def, "())") {
		switch def[i:] {
		case " (disabled)", " (replica)", " (always)":
			return def[:i]
		}
	}
	return def
}
