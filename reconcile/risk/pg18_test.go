//go:build cgo

package risk

import (
	"errors"
	"strings"
	"testing"
)

// TestPG18Syntax: PostgreSQL 18 syntax the parser (PostgreSQL 17 grammar)
// rejects is reported as such, naming the construct; other syntax errors
// stay plain syntax errors. (OLD/NEW in RETURNING without WITH parses: it
// reads as columns of tables named old and new.)
func TestPG18Syntax(t *testing.T) {
	for _, tc := range []struct {
		name, sql string
		want      string // construct; "" for a plain syntax error
	}{
		{"virtual column", "CREATE TABLE t (a int, b int GENERATED ALWAYS AS (a * 2) VIRTUAL);", "virtual generated column (GENERATED ALWAYS AS (...) VIRTUAL)"},
		{"virtual by default", "SELECT 1;\nALTER TABLE t ADD COLUMN c int GENERATED ALWAYS AS (a + 1);", "without STORED"},
		{"without overlaps", "CREATE TABLE r (id int, valid tstzrange, PRIMARY KEY (id, valid WITHOUT OVERLAPS));", "WITHOUT OVERLAPS"},
		{"period foreign key", "CREATE TABLE s (id int, valid tstzrange, FOREIGN KEY (id, PERIOD valid) REFERENCES r (id, PERIOD valid));", "temporal foreign key (PERIOD)"},
		{"not enforced", "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT ENFORCED;", "NOT ENFORCED"},
		// (An UPDATE alone is Inert: nothing in it can be risky, so it is not parsed.)
		{"returning old/new", "WITH u AS (UPDATE t SET a = 1 RETURNING WITH (OLD AS o, NEW AS n) o.a, n.a) SELECT 1;", "RETURNING WITH (OLD/NEW"},
		{"not null not valid", "ALTER TABLE t ADD CONSTRAINT nn NOT NULL a NOT VALID;", "named NOT NULL constraint"},
		{"virtual at the end of input", "ALTER TABLE t ADD COLUMN c int GENERATED ALWAYS AS (a + 1)", "without STORED"},
		{"in a DO block", "DO $$ BEGIN EXECUTE 'ALTER TABLE t ADD COLUMN v int GENERATED ALWAYS AS (1) VIRTUAL'; END $$;", "VIRTUAL"},
		{"plain typo", "CREATE TABEL t (a int);", ""},
		{"typo after a stored column", "CREATE TABLE t (a int GENERATED ALWAYS AS (1) STORED,, b int);", ""},
		{"typo after a semicolon", "UPDATE t SET a = 1 RETURNING a;\nWITH (x);", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Migration(tc.sql, nil, DefaultIndexThreshold)
			var pe *PG18SyntaxError
			isPG18 := errors.As(err, &pe)
			switch {
			case err == nil:
				t.Fatal("no error")
			case tc.want == "" && isPG18:
				t.Fatalf("a plain syntax error reported as PostgreSQL 18 syntax: %v", err)
			case tc.want != "" && (!isPG18 || !strings.Contains(pe.Construct, tc.want) ||
				!strings.HasPrefix(err.Error(), "cannot analyse (PostgreSQL 18 syntax not known to the parser)") &&
					!strings.Contains(err.Error(), "DO block")):
				t.Fatalf("got %v, want a PostgreSQL 18 syntax error naming %q", err, tc.want)
			}
			t.Log(err)
		})
	}
}
