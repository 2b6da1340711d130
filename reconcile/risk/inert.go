package risk

import "strings"

// Inert reports, from tokens alone, that the analysis of sql can find
// nothing and change nothing in a Sequence, so that it needs no parse tree.
//
// The analyser reacts only to CREATE TABLE / TABLE AS / MATERIALIZED VIEW /
// SCHEMA / INDEX, SELECT INTO, DROP, TRUNCATE, ALTER, DO (and the ALTER ...
// RENAME / SET SCHEMA forms). sql is inert when every statement starts with
// a keyword that parses to none of these: see inertStart. The lexer splits
// at every ';' outside comments, quoted strings and identifiers and dollar
// quotes, which is at least every statement boundary PostgreSQL sees (it may
// split more, e.g. inside BEGIN ATOMIC bodies: the extra pieces then start
// with a keyword outside the list, or one that parses to nothing risky
// either way). Anything the lexer cannot follow (an unterminated string or
// comment) is not inert. A statement that would not parse at all is not
// caught here: it cannot run on the server either.
func Inert(sql string) bool {
	stmt := []string(nil) // the first keywords of the current statement
	into := false         // an INTO keyword seen in the current statement
	end := func() bool {
		ok := len(stmt) == 0 || inertStart(stmt, into)
		stmt, into = stmt[:0], false
		return ok
	}
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == ';':
			if !end() {
				return false
			}
			i++
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && strings.HasPrefix(sql[i:], "--"):
			j := strings.IndexByte(sql[i:], '\n')
			if j < 0 {
				i = len(sql)
			} else {
				i += j + 1
			}
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			j, ok := skipBlockComment(sql, i)
			if !ok {
				return false
			}
			i = j
		case c == '\'':
			j, ok := skipQuoted(sql, i, '\'', false)
			if !ok {
				return false
			}
			stmt, i = append(stmt, "'"), j
		case c == '"':
			j, ok := skipQuoted(sql, i, '"', false)
			if !ok {
				return false
			}
			stmt, i = append(stmt, `"`), j
		case c == '$':
			j, ok := skipDollar(sql, i)
			if !ok {
				return false
			}
			stmt, i = append(stmt, "$"), j
		case identStart(c):
			j := i + 1
			for j < len(sql) && identPart(sql[j]) {
				j++
			}
			word := strings.ToUpper(sql[i:j])
			if (word == "E" || word == "X" || word == "B" || word == "U&") && j < len(sql) && sql[j] == '\'' {
				k, ok := skipQuoted(sql, j, '\'', word == "E")
				if !ok {
					return false
				}
				stmt, i = append(stmt, "'"), k
				continue
			}
			if word == "INTO" {
				into = true
			}
			stmt, i = append(stmt, word), j
		default:
			stmt = append(stmt, string(c))
			i++
		}
	}
	return end()
}

// inertStatements are the first keywords of statements that parse to
// nothing the analyser looks at (InsertStmt, UpdateStmt, DeleteStmt,
// CommentStmt, GrantStmt, VariableSetStmt, VacuumStmt, ...).
var inertStatements = map[string]bool{
	"INSERT": true, "UPDATE": true, "DELETE": true, "COMMENT": true, "GRANT": true, "REVOKE": true,
	"SET": true, "RESET": true, "ANALYZE": true, "ANALYSE": true, "VACUUM": true, "REFRESH": true,
	"NOTIFY": true, "LISTEN": true, "CALL": true,
}

// inertCreates are the objects of CREATE [OR REPLACE] that are not tables,
// schemas or indexes. Function and procedure bodies do not run at
// migration time.
var inertCreates = map[string]bool{
	"FUNCTION": true, "PROCEDURE": true, "VIEW": true, "TRIGGER": true, "TYPE": true, "SEQUENCE": true,
	"EXTENSION": true, "POLICY": true, "DOMAIN": true, "ROLE": true, "USER": true, "RULE": true,
	"AGGREGATE": true, "COLLATION": true, "CAST": true, "PUBLICATION": true, "STATISTICS": true,
}

// inertStart decides on a statement from its first tokens; into says the
// statement has an INTO keyword somewhere.
func inertStart(stmt []string, into bool) bool {
	switch first := stmt[0]; {
	case inertStatements[first]:
		return true
	case first == "SELECT":
		return !into // SELECT ... INTO creates a table
	case first == "CREATE":
		rest := stmt[1:]
		if len(rest) >= 2 && rest[0] == "OR" && rest[1] == "REPLACE" {
			rest = rest[2:]
		}
		return len(rest) > 0 && inertCreates[rest[0]]
	}
	return false
}

func identStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func identPart(c byte) bool {
	return identStart(c) || c >= '0' && c <= '9' || c == '$' || c == '&'
}

// skipQuoted returns the index after the quoted token starting at sql[i]
// (a doubled quote stands for itself; with backslash, \x escapes x).
func skipQuoted(sql string, i int, q byte, backslash bool) (int, bool) {
	for j := i + 1; j < len(sql); j++ {
		switch sql[j] {
		case '\\':
			if backslash {
				j++
			}
		case q:
			if j+1 < len(sql) && sql[j+1] == q {
				j++
				continue
			}
			return j + 1, true
		}
	}
	return 0, false
}

// skipBlockComment returns the index after the (nestable) comment at sql[i].
func skipBlockComment(sql string, i int) (int, bool) {
	depth := 0
	for j := i; j+1 < len(sql); j++ {
		switch {
		case sql[j] == '/' && sql[j+1] == '*':
			depth++
			j++
		case sql[j] == '*' && sql[j+1] == '/':
			depth--
			j++
			if depth == 0 {
				return j + 1, true
			}
		}
	}
	return 0, false
}

// skipDollar returns the index after the dollar-quoted string at sql[i], or
// after a parameter like $1.
func skipDollar(sql string, i int) (int, bool) {
	j := i + 1
	if j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
		for j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
			j++
		}
		return j, true
	}
	for j < len(sql) && sql[j] != '$' {
		if !identStart(sql[j]) && !(j > i+1 && sql[j] >= '0' && sql[j] <= '9') {
			return 0, false // not a dollar quote PostgreSQL knows: do not guess
		}
		j++
	}
	if j >= len(sql) {
		return 0, false
	}
	tag := sql[i : j+1]
	k := strings.Index(sql[j+1:], tag)
	if k < 0 {
		return 0, false
	}
	return j + 1 + k + len(tag), true
}
