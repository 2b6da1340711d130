//go:build cgo

package risk

import (
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
)

// plStmt is one SQL statement of a PL/pgSQL body: static SQL, or the
// expression given to EXECUTE (dynamic).
type plStmt struct {
	sql     string
	dynamic bool
}

// Paths (object keys, innermost last) of the SQL text in the JSON tree of
// pg_query.ParsePlPgSqlToJSON.
var (
	execSQLPath = []string{"PLpgSQL_stmt_execsql", "sqlstmt", "PLpgSQL_expr", "query"}
	dynExecPath = []string{"PLpgSQL_stmt_dynexecute", "query", "PLpgSQL_expr", "query"}
)

// plpgsqlStatements returns, in source order, the SQL statements and EXECUTE
// expressions of a PL/pgSQL parse tree in JSON. It streams tokens instead of
// decoding into maps so that the order is kept.
func plpgsqlStatements(js string) ([]plStmt, error) {
	type frame struct {
		object  bool
		wantKey bool
		key     string
	}
	var stack []frame
	var out []plStmt
	dec := json.NewDecoder(strings.NewReader(js))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			if k, ok := tok.(string); ok {
				stack[n-1].key, stack[n-1].wantKey = k, false
				continue
			}
		}
		switch tok {
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			continue
		}
		// tok is a value: the enclosing object expects a key next.
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{object: true, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, frame{})
			continue
		}
		s, ok := tok.(string)
		if !ok {
			continue
		}
		var path []string
		for _, f := range stack {
			if f.object {
				path = append(path, f.key)
			}
		}
		switch {
		case hasSuffix(path, execSQLPath):
			out = append(out, plStmt{sql: s})
		case hasSuffix(path, dynExecPath):
			out = append(out, plStmt{sql: s, dynamic: true})
		}
	}
}

func hasSuffix(path, suffix []string) bool {
	return len(path) >= len(suffix) && slices.Equal(path[len(path)-len(suffix):], suffix)
}
