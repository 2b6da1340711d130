// Package risk decides which planned changes are risky (when maintenance
// windows are open is spec.Windows.Open). It is pure logic: it reads no
// server, and callers pass in what they observed (table sizes, Redis
// INFO/CONFIG values).
//
// Migration SQL is analysed with the PostgreSQL parser (pg_query_go, cgo).
// Built with CGO_ENABLED=0, Migration and TablesIndexed return ErrNoParser,
// which callers treat as "cannot analyse", i.e. risky.
package risk

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Stable rule ids of Finding.Rule.
const (
	RuleDropTable           = "drop-table"
	RuleDropColumn          = "drop-column"
	RuleTruncate            = "truncate"
	RuleAlterColumnType     = "alter-column-type"
	RuleCreateIndexBlocking = "create-index-blocking"
	RuleDownMigration       = "down-migration"
	RuleAppendOnlyOff       = "appendonly-off"
	RuleMaxMemoryBelowUsed  = "maxmemory-below-used"
	RuleNoEvictionNearLimit = "noeviction-near-limit"
)

// DefaultIndexThreshold is the table size above which CREATE INDEX without
// CONCURRENTLY is risky: 10 MiB.
const DefaultIndexThreshold int64 = 10 << 20

// ErrNoParser is returned by Migration and TablesIndexed in builds without
// cgo, where the PostgreSQL parser is not available.
var ErrNoParser = errors.New("cannot analyse SQL: dbops was built without cgo, so the PostgreSQL parser is unavailable")

// Finding is one reason why a change is risky.
type Finding struct {
	Rule   string // stable id, one of the Rule* constants
	Reason string // human sentence naming the objects concerned
}

func (f Finding) String() string { return f.Rule + ": " + f.Reason }

// Down returns the finding for running the Down section of migration file.
func Down(file string) Finding {
	return Finding{RuleDownMigration, fmt.Sprintf("down migration %s runs its Down SQL, which usually destroys what its Up created", file)}
}

// Table names a table as the parser saw it: identifiers are already
// case-folded (unquoted) or kept verbatim (quoted). Schema is "" when the SQL
// did not qualify the name.
type Table struct{ Schema, Name string }

// String is the table's name quoted where needed, usable as the text argument
// of to_regclass: `SELECT pg_total_relation_size(to_regclass($1))`.
func (t Table) String() string {
	if t.Schema == "" {
		return QuoteIdent(t.Name)
	}
	return QuoteIdent(t.Schema) + "." + QuoteIdent(t.Name)
}

// QuoteIdent double-quotes an identifier unless it is a plain lower-case
// name that PostgreSQL would read back unchanged. (Reserved words are not
// detected; they are rare as table names in migrations.)
func QuoteIdent(s string) string {
	plain := s != ""
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r == '_':
		case (r >= '0' && r <= '9') || r == '$':
			plain = plain && i > 0
		default:
			plain = false
		}
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// formatBytes renders n as "512 B", "10 MiB", "1.5 GiB".
func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	v := strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64)
	v = strings.TrimSuffix(v, ".0")
	return v + " " + string("KMGTPE"[exp]) + "iB"
}
