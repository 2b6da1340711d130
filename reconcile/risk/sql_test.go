//go:build cgo

package risk

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// sizes of the tables the tests know; any other table has an unknown size.
var testSizes = map[Table]int64{
	{"", "orders"}:         50 << 20,
	{"", "small"}:          1 << 20,
	{"sales", "Big Items"}: 11 << 20,
	{"", "edge"}:           DefaultIndexThreshold,
}

func lookup(schema, table string) (int64, bool) {
	n, ok := testSizes[Table{schema, table}]
	return n, ok
}

func TestMigration(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want []string // "rule|substring of reason"
	}{
		// drop-table
		{"drop table", `DROP TABLE orders;`, []string{"drop-table|DROP TABLE orders destroys its data"}},
		{"drop several tables", `DROP TABLE IF EXISTS a, public.b CASCADE;`, []string{"drop-table|DROP TABLE a ", "drop-table|DROP TABLE public.b "}},
		{"drop index is safe", `DROP INDEX orders_idx; DROP INDEX CONCURRENTLY IF EXISTS x;`, nil},
		{"drop view is safe", `DROP VIEW v; DROP MATERIALIZED VIEW mv;`, nil},
		{"drop schema cascade", `DROP SCHEMA old CASCADE;`, []string{"drop-table|DROP SCHEMA old CASCADE"}},
		{"drop schema restrict is safe", `DROP SCHEMA old;`, nil},
		// drop-column
		{"drop column", `ALTER TABLE orders DROP COLUMN note;`, []string{"drop-column|ALTER TABLE orders DROP COLUMN note destroys"}},
		{"add column is safe", `ALTER TABLE orders ADD COLUMN note text;`, nil},
		{"rename column is safe", `ALTER TABLE orders RENAME COLUMN a TO b;`, nil},
		// truncate
		{"truncate", `TRUNCATE orders;`, []string{"truncate|TRUNCATE orders deletes all its rows"}},
		{"truncate cascade", `TRUNCATE TABLE a, b CASCADE;`, []string{"truncate|TRUNCATE a deletes all its rows and those of every table referencing it", "truncate|TRUNCATE b "}},
		{"delete is not truncate", `DELETE FROM orders WHERE id = 1;`, nil},
		// alter-column-type
		{"alter column type", `ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,2) USING total::numeric;`,
			[]string{"alter-column-type|ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,2)"}},
		{"alter column set data type array", `ALTER TABLE orders ALTER total SET DATA TYPE varchar(20)[];`, []string{"alter-column-type|TYPE varchar(20)[]"}},
		{"alter column set default is safe", `ALTER TABLE orders ALTER COLUMN total SET DEFAULT 0;`, nil},
		{"alter column drop not null is safe", `ALTER TABLE orders ALTER COLUMN total DROP NOT NULL;`, nil},
		{"composite type and foreign table are not tables", `ALTER TYPE address DROP ATTRIBUTE zip; ALTER FOREIGN TABLE ft DROP COLUMN c, ALTER COLUMN d TYPE text;`, nil},
		// create-index-blocking
		{"index on big table", `CREATE INDEX orders_user_idx ON orders (user_id);`,
			[]string{"create-index-blocking|CREATE INDEX orders_user_idx builds an index on orders (50 MiB, over 10 MiB) without CONCURRENTLY"}},
		{"unique index on unknown table", `CREATE UNIQUE INDEX ON mystery (a);`, []string{"create-index-blocking|on mystery (size unknown)"}},
		{"index concurrently is safe", `CREATE INDEX CONCURRENTLY orders_user_idx ON orders (user_id);`, nil},
		{"index on small table is safe", `CREATE INDEX ON small (a);`, nil},
		{"index at exactly the threshold is safe", `CREATE INDEX ON edge (a);`, nil},
		{"index on table created in the migration is safe", `CREATE TABLE mystery (a int); CREATE INDEX ON mystery (a); ALTER TABLE mystery ADD PRIMARY KEY (a);`, nil},
		{"created unqualified, indexed in public", `CREATE TABLE mystery (a int); CREATE INDEX ON public.mystery (a);`, nil},
		{"created in public, dropped unqualified", `CREATE TABLE public.mystery (a int); DROP TABLE mystery;`, nil},
		{"created as select", `CREATE TABLE mystery AS SELECT 1 AS a; CREATE INDEX ON mystery (a);`, nil},
		{"create if not exists may be an old table", `CREATE TABLE IF NOT EXISTS mystery (a int); CREATE INDEX ON mystery (a);`,
			[]string{"create-index-blocking|mystery (size unknown)"}},
		{"index before the create is risky", `CREATE INDEX ON mystery (a); CREATE TABLE mystery (a int);`, []string{"create-index-blocking|mystery"}},
		{"add primary key on big table", `ALTER TABLE orders ADD PRIMARY KEY (id);`, []string{"create-index-blocking|ALTER TABLE orders ADD PRIMARY KEY builds an index on orders"}},
		{"add unique using existing index is safe", `ALTER TABLE orders ADD CONSTRAINT u UNIQUE USING INDEX orders_u;`, nil},
		{"add foreign key is not an index", `ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (u) REFERENCES users (id);`, nil},
		// quoting and schemas
		{"quoted schema-qualified names", `CREATE INDEX ON sales."Big Items" (a); ALTER TABLE "Sales"."Order" DROP COLUMN "Note";`,
			[]string{`create-index-blocking|on sales."Big Items" (11 MiB, over 10 MiB)`, `drop-column|ALTER TABLE "Sales"."Order" DROP COLUMN "Note"`}},
		{"unquoted names are folded", `DROP TABLE Sales.ORDERS;`, []string{"drop-table|DROP TABLE sales.orders "}},
		// other tables or a new table
		{"new table may be dropped and truncated", `CREATE TABLE tmp (a int); TRUNCATE tmp; ALTER TABLE tmp ALTER COLUMN a TYPE bigint, DROP COLUMN a; DROP TABLE tmp;`, nil},
		{"other schema is another table", `CREATE TABLE tmp (a int); DROP TABLE archive.tmp;`, []string{"drop-table|DROP TABLE archive.tmp"}},
		// multi-statement files and order
		{"multi-statement", `
CREATE TABLE t (id int);
INSERT INTO t VALUES (1);
ALTER TABLE orders ADD COLUMN x int, DROP COLUMN y;
-- a comment mentioning DROP TABLE orders
SELECT 'DROP TABLE orders';
TRUNCATE small;
`, []string{"drop-column|DROP COLUMN y", "truncate|TRUNCATE small"}},
		// functions and DO blocks
		{"function body does not run", `
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION purge() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DROP TABLE orders;
END;
$$;
-- +goose StatementEnd
CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'TRUNCATE orders; SELECT 1';`, nil},
		{"do block statements are analysed", `
DO $$
DECLARE r record; v orders%ROWTYPE;
BEGIN
  IF EXISTS (SELECT 1 FROM pg_tables WHERE tablename = 'legacy') THEN
    DROP TABLE legacy;
  END IF;
  FOR r IN SELECT 1 LOOP
    ALTER TABLE orders DROP COLUMN c;
  END LOOP;
  EXECUTE 'TRUNCATE small';
  UPDATE orders SET a = 1;
END
$$;`, []string{"drop-table|DROP TABLE legacy destroys its data (in a DO block)", "drop-column|DROP COLUMN c", "truncate|TRUNCATE small"}},
		{"safe do block", `DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'mood') THEN CREATE TYPE mood AS ENUM ('ok'); END IF;
  EXECUTE 'CREATE INDEX CONCURRENTLY i ON orders (a)';
EXCEPTION WHEN duplicate_object THEN NULL;
END $$ LANGUAGE plpgsql;`, nil},
		{"do block sees tables created before it", `CREATE TABLE tmp (a int); DO $$ BEGIN DROP TABLE tmp; END $$;`, nil},
		{"body containing the wrapper tag", `DO $x$ BEGIN DROP TABLE "$dbops$"; END $x$;`, []string{`drop-table|DROP TABLE "$dbops$"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Migration(tt.sql, lookup, DefaultIndexThreshold)
			if err != nil {
				t.Fatalf("Migration: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d findings %q, want %d %q", len(got), got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				rule, sub, _ := strings.Cut(w, "|")
				if got[i].Rule != rule || !strings.Contains(got[i].Reason, sub) {
					t.Errorf("finding %d = %q, want rule %s with reason containing %q", i, got[i], rule, sub)
				}
			}
		})
	}
}

func TestMigrationThresholdAndNilSizes(t *testing.T) {
	sql := `CREATE INDEX ON small (a);`
	if got, _ := Migration(sql, lookup, 512<<10); len(got) != 1 || !strings.Contains(got[0].Reason, "1 MiB, over 512 KiB") {
		t.Errorf("threshold 512 KiB: got %q", got)
	}
	if got, _ := Migration(sql, nil, DefaultIndexThreshold); len(got) != 1 || !strings.Contains(got[0].Reason, "size unknown") {
		t.Errorf("nil sizes: got %q", got)
	}
}

func TestMigrationErrors(t *testing.T) {
	tests := []struct{ name, sql, want string }{
		{"syntax error with line", "SELECT 1;\nCREATE TABEL t (a int);", "line 2: syntax error at or near \"TABEL\""},
		{"truncated statement", "DROP TABLE", "syntax error at end of input"},
		{"computed EXECUTE", "DO $$ BEGIN EXECUTE format('DROP TABLE %I', 'x'); END $$;", "cannot analyse EXECUTE format("},
		{"other language", "DO LANGUAGE plpython3u $$ plpy.execute('drop table x') $$;", "language plpython3u"},
		{"bad plpgsql", "DO $$ BEGIN x := 1; END $$;", "DO block: "},
		{"bad sql in do block", "DO $$ BEGIN EXECUTE 'DROP TABEL x'; END $$;", "DO block: cannot parse SQL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Migration(tt.sql, lookup, DefaultIndexThreshold)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Migration = %q, %v; want error containing %q", got, err, tt.want)
			}
			if errors.Is(err, ErrNoParser) {
				t.Errorf("cgo build returned ErrNoParser")
			}
		})
	}
}

func TestTablesIndexed(t *testing.T) {
	sql := `CREATE TABLE fresh (a int);
CREATE INDEX ON fresh (a);
CREATE INDEX ON orders (a);
CREATE INDEX CONCURRENTLY ON small (a);
CREATE UNIQUE INDEX ON sales."Big Items" (a);
ALTER TABLE orders ADD PRIMARY KEY (id);
DO $$ BEGIN CREATE INDEX ON small (b); END $$;`
	got, err := TablesIndexed(sql)
	if err != nil {
		t.Fatal(err)
	}
	want := []Table{{"", "orders"}, {"sales", "Big Items"}, {"", "small"}}
	if !slices.Equal(got, want) {
		t.Fatalf("TablesIndexed = %q, want %q", got, want)
	}
	if s := got[1].String(); s != `sales."Big Items"` {
		t.Errorf("String() = %s", s)
	}
	if _, err := TablesIndexed("CREATE INDEX ON"); err == nil {
		t.Error("no error for bad SQL")
	}
}

// TestGooseFileEndToEnd runs SplitGoose and Migration on a whole file.
func TestGooseFileEndToEnd(t *testing.T) {
	file := `-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
  ALTER TABLE orders DROP COLUMN legacy;
END $$;
-- +goose StatementEnd
CREATE INDEX ON orders (b);

-- +goose Down
DROP TABLE orders;
`
	up, err := SplitGoose([]byte(file), false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Migration(up, lookup, DefaultIndexThreshold)
	if err != nil {
		t.Fatal(err)
	}
	rules := []string{}
	for _, f := range got {
		rules = append(rules, f.Rule)
	}
	if want := []string{RuleDropColumn, RuleCreateIndexBlocking}; !slices.Equal(rules, want) {
		t.Errorf("up findings %q, want rules %q", got, want)
	}
	down, _ := SplitGoose([]byte(file), true)
	if got, _ := Migration(down, lookup, DefaultIndexThreshold); len(got) != 1 || got[0].Rule != RuleDropTable {
		t.Errorf("down findings %q", got)
	}
	_, err = Migration(strings.Replace(up, "CREATE INDEX", "CREATE INDX", 1), lookup, 0)
	if err == nil || !strings.Contains(err.Error(), "line 8:") {
		t.Errorf("parse error %v does not carry the file's line 8", err)
	}
}
