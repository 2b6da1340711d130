//go:build cgo

package risk

import (
	"slices"
	"testing"
)

// observed is a Catalog of fixed observations: live tables with their
// state and columns. Any other table is absent.
type observed struct {
	tables  map[string]TableState
	columns map[string][]string
	schemas []string
}

func (o observed) Table(t Table) TableState { return o.tables[t.Name] }
func (o observed) Column(t Table, c string) bool {
	return slices.Contains(o.columns[t.Name], c)
}
func (o observed) Schema(name string) bool    { return slices.Contains(o.schemas, name) }
func (o observed) Size(t Table) (int64, bool) { return 1 << 10, true }

func TestSequence(t *testing.T) {
	live := observed{
		tables:  map[string]TableState{"users": TableHasRows, "drafts": TableEmpty},
		columns: map[string][]string{"users": {"id", "email", "legacy"}, "drafts": {"id", "body"}},
		schemas: []string{"public", "audit"},
	}
	tests := []struct {
		name       string
		migrations []string // pending, in order
		want       []string // rules found, all migrations together
	}{
		{"drop absent table", []string{"DROP TABLE IF EXISTS gone;"}, nil},
		{"drop absent schema", []string{"DROP SCHEMA IF EXISTS old CASCADE;"}, nil},
		{"drop live schema", []string{"DROP SCHEMA audit CASCADE;"}, []string{RuleDropTable}},
		{"drop live table with rows", []string{"DROP TABLE users;"}, []string{RuleDropTable}},
		{"truncate live empty table", []string{"TRUNCATE drafts;"}, nil},
		{"truncate cascade reaches referencing tables", []string{"TRUNCATE drafts CASCADE;"}, []string{RuleTruncate}},
		{"drop live empty table", []string{"DROP TABLE drafts;", "TRUNCATE drafts;"}, nil},
		{"created by an earlier migration", []string{
			"CREATE TABLE t (id int, note text);",
			"ALTER TABLE t DROP COLUMN note;\nALTER TABLE t ALTER COLUMN id TYPE bigint;\nTRUNCATE t;\nDROP TABLE t;",
		}, nil},
		{"create if not exists of an absent table", []string{
			"CREATE TABLE IF NOT EXISTS t (id int, note text);", "ALTER TABLE t DROP COLUMN note;",
		}, nil},
		{"create if not exists keeps a live table", []string{
			"CREATE TABLE IF NOT EXISTS users (id int);", "DROP TABLE users;",
		}, []string{RuleDropTable}},
		{"drop missing column", []string{"ALTER TABLE users DROP COLUMN IF EXISTS nope;"}, nil},
		{"drop live column", []string{"ALTER TABLE users DROP COLUMN legacy;"}, []string{RuleDropColumn}},
		{"column added earlier in the plan", []string{
			"ALTER TABLE users ADD COLUMN tmp text;", "ALTER TABLE users DROP COLUMN tmp;",
		}, nil},
		{"type change of an added column still rewrites a table with rows", []string{
			"ALTER TABLE users ADD COLUMN n int;", "ALTER TABLE users ALTER COLUMN n TYPE bigint;",
		}, []string{RuleAlterColumnType}},
		{"renamed live table keeps its data", []string{
			"ALTER TABLE users RENAME TO accounts;", "ALTER TABLE accounts DROP COLUMN email;\nDROP TABLE accounts;",
		}, []string{RuleDropColumn, RuleDropTable}},
		{"old name of a renamed table is gone", []string{
			"ALTER TABLE users RENAME TO accounts;", "DROP TABLE IF EXISTS users;",
		}, nil},
		{"renamed live column keeps its data", []string{
			"ALTER TABLE users RENAME COLUMN legacy TO old;", "ALTER TABLE users DROP COLUMN old;",
		}, []string{RuleDropColumn}},
		{"moved to another schema", []string{
			"ALTER TABLE users SET SCHEMA audit;", "TRUNCATE audit.users;",
		}, []string{RuleTruncate}},
		{"dropped and re-created", []string{
			"DROP TABLE users;", "CREATE TABLE users (id int);", "DROP TABLE users;",
		}, []string{RuleDropTable}},
		{"in a DO block", []string{
			"DO $$ BEGIN CREATE TABLE d (id int); END $$;", "DROP TABLE d;",
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq := NewSequence(live, DefaultIndexThreshold)
			var got []string
			for _, m := range tt.migrations {
				fs, err := seq.Migration(m)
				if err != nil {
					t.Fatalf("%s: %v", m, err)
				}
				for _, f := range fs {
					got = append(got, f.Rule)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("rules %v, want %v", got, tt.want)
			}
		})
	}
}
