package risk

import (
	"fmt"
	"regexp"
	"strings"
)

// PG18SyntaxError reports a migration using PostgreSQL 18 syntax that the
// parser (pg_query_go v6: the PostgreSQL 17 grammar) rejects. The SQL may
// well be valid on the server; it just cannot be analysed.
type PG18SyntaxError struct {
	Construct string // e.g. "a virtual generated column"
	Line      int
	Err       error // the parser's syntax error
}

func (e *PG18SyntaxError) Error() string {
	return fmt.Sprintf("cannot analyse (PostgreSQL 18 syntax not known to the parser): line %d: %s (%v)", e.Line, e.Construct, e.Err)
}

func (e *PG18SyntaxError) Unwrap() error { return e.Err }

// pg18Constructs recognise, at the parser's error position, PostgreSQL 18
// syntax the PostgreSQL 17 grammar does not have: before is the
// statement's text up to the error, at the text from it.
var pg18Constructs = []struct {
	what       string
	before, at *regexp.Regexp
}{
	{"a virtual generated column (GENERATED ALWAYS AS (...) VIRTUAL)", nil, regexp.MustCompile(`(?i)^VIRTUAL\b`)},
	{"a virtual generated column (GENERATED ALWAYS AS (...) without STORED)", regexp.MustCompile(`(?is)\bGENERATED\s+ALWAYS\s+AS\s*\(.*\)\s*$`), regexp.MustCompile(`^([,);]|$)`)},
	{"a temporal key (WITHOUT OVERLAPS)", nil, regexp.MustCompile(`(?i)^WITHOUT\s+OVERLAPS\b`)},
	{"a temporal foreign key (PERIOD)", regexp.MustCompile(`(?i)\bPERIOD\s+$`), nil},
	{"a NOT ENFORCED constraint", regexp.MustCompile(`(?i)\bNOT\s+$`), regexp.MustCompile(`(?i)^ENFORCED\b`)},
	{"RETURNING WITH (OLD/NEW AS ...)", regexp.MustCompile(`(?i)\bRETURNING\s+$`), regexp.MustCompile(`(?i)^WITH\s*\(`)},
	{"a named NOT NULL constraint (ADD CONSTRAINT name NOT NULL column)", regexp.MustCompile(`(?i)\bCONSTRAINT\s+\S+\s+$`), regexp.MustCompile(`(?i)^NOT\s+NULL\b`)},
}

// pg18Construct names the PostgreSQL 18 construct at the 1-based character
// position cursor of sql, if there is one.
func pg18Construct(sql string, cursor int) (string, bool) {
	runes := []rune(sql)
	if cursor < 1 || cursor > len(runes)+1 { // len+1: at the end of input
		return "", false
	}
	before, at := string(runes[:cursor-1]), string(runes[cursor-1:])
	if i := strings.LastIndexByte(before, ';'); i >= 0 { // this statement only
		before = before[i+1:]
	}
	for _, c := range pg18Constructs {
		if (c.before == nil || c.before.MatchString(before)) && (c.at == nil || c.at.MatchString(at)) {
			return c.what, true
		}
	}
	return "", false
}
