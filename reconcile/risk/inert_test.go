//go:build cgo

package risk

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

func TestInert(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want bool
	}{
		{"", true},
		{"-- +goose Up\n-- nothing\n", true},
		{"INSERT INTO t VALUES (1); UPDATE t SET a = 2; DELETE FROM t WHERE a = 3;", true},
		{"INSERT INTO t VALUES ('a; DROP TABLE x');", true},
		{"INSERT INTO t VALUES (E'it\\'s; DROP TABLE x');", true},
		{"INSERT INTO t VALUES ('it''s; DROP TABLE x');", true},
		{`INSERT INTO "a;DROP TABLE x" VALUES (1);`, true},
		{"/* DROP TABLE x; /* nested; */ still; */ COMMENT ON TABLE t IS 'x';", true},
		{"-- DROP TABLE x;\nGRANT SELECT ON t TO r;", true},
		{"CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ DROP TABLE x; $$;", true},
		{"CREATE OR REPLACE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $body$ BEGIN DROP TABLE x; END $body$;", true},
		{"CREATE OR REPLACE VIEW v AS SELECT 1; CREATE SEQUENCE s; CREATE TYPE e AS ENUM ('a');", true},
		{"SELECT set_config('a', 'b', false); SELECT $1;", true},
		{"SET lock_timeout = '1s'; RESET lock_timeout;", true},
		{"INSERT INTO t VALUES (1); DROP TABLE x;", false},
		{"INSERT INTO t VALUES (1) /* ; */; TRUNCATE t", false},
		{"SELECT * INTO copy FROM t;", false},
		{"WITH x AS (SELECT 1) SELECT * FROM x;", false},
		{"(SELECT 1 INTO t);", false},
		{"CREATE TABLE t (a int);", false},
		{"CREATE UNIQUE INDEX ON t (a);", false},
		{"CREATE TEMP VIEW v AS SELECT 1;", false},
		{"CREATE MATERIALIZED VIEW mv AS SELECT 1;", false},
		{"CREATE SCHEMA s;", false},
		{"ALTER TABLE t DROP COLUMN a;", false},
		{"DO $$ BEGIN DELETE FROM t; END $$;", false},
		{"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;", false},
		{"INSERT INTO t VALUES ('unterminated; DROP TABLE x;", false},
		{"INSERT INTO t VALUES (1); /* unterminated", false},
		{"CREATE FUNCTION f() AS $a$ body $b$; DROP TABLE x;", false},
	} {
		if got := Inert(tc.sql); got != tc.want {
			t.Errorf("Inert(%q) = %v, want %v", tc.sql, got, tc.want)
		}
	}
}

// everything is the catalog under which the rules find the most: every
// table, column and schema exists, holds rows and has an unknown size.
type everything struct{}

func (everything) Table(Table) TableState    { return TableHasRows }
func (everything) Column(Table, string) bool { return true }
func (everything) Schema(string) bool        { return true }
func (everything) Size(Table) (int64, bool)  { return 0, false }

// checkInertSound fails when Inert(sql) holds but the full analysis of sql,
// after earlier migrations that created, renamed and dropped tables, finds
// something or changes the Sequence's state. An error of the analysis is
// allowed only when the parser rejects sql (then it cannot run either).
func checkInertSound(t *testing.T, name, sql string) bool {
	t.Helper()
	if !Inert(sql) {
		return false
	}
	for _, cat := range []Catalog{everything{}, legacy{}} {
		seq := NewSequence(cat, 0)
		for _, before := range []string{
			"CREATE TABLE t (a int); ALTER TABLE users RENAME TO people; DROP TABLE gone; CREATE SCHEMA s;",
			"ALTER TABLE orders RENAME COLUMN a TO b; ALTER TABLE orders ADD COLUMN c int;",
		} {
			if _, err := seq.analyse(before); err != nil {
				t.Fatalf("earlier migration: %v", err)
			}
		}
		tables, columns, schemas := maps.Clone(seq.names.tables), maps.Clone(seq.names.columns), maps.Clone(seq.names.schemas)
		findings, err := seq.analyse(sql)
		if err != nil {
			if _, perr := pg_query.Parse(sql); perr == nil {
				t.Errorf("%s: Inert, but the analysis fails on SQL that parses: %v\n%s", name, err, sql)
			}
			continue
		}
		if len(findings) > 0 {
			t.Errorf("%s: Inert, but the analysis finds %v\n%s", name, findings, sql)
		}
		if !maps.Equal(tables, seq.names.tables) || !maps.Equal(columns, seq.names.columns) || !maps.Equal(schemas, seq.names.schemas) {
			t.Errorf("%s: Inert, but the analysis changes what the Sequence knows\n%s", name, sql)
		}
	}
	return true
}

// TestInertSoundOnCorpus: over every SQL string of this package's tests, the
// repository's .sql files (whole and their goose Up sections) and generated
// migrations, Inert never skips a file whose analysis matters.
func TestInertSoundOnCorpus(t *testing.T) {
	corpus := sqlCorpus(t)
	inert := 0
	for name, sql := range corpus {
		if checkInertSound(t, name, sql) {
			inert++
		}
	}
	// The property must be exercised on both sides.
	if inert < 100 || len(corpus)-inert < 100 {
		t.Fatalf("%d of %d corpus files inert: the corpus does not test both sides", inert, len(corpus))
	}
	t.Logf("%d of %d corpus files inert", inert, len(corpus))
}

// sqlCorpus is every SQL string of this package's tests, the repository's
// .sql files (whole and their goose Up sections) and generated migrations,
// by name.
func sqlCorpus(t *testing.T) map[string]string {
	t.Helper()
	corpus := map[string]string{}
	for name, sql := range testStrings(t) {
		corpus[name] = sql
	}
	for name, sql := range repoSQL(t) {
		corpus[name] = sql
	}
	for i, sql := range generated(3000) {
		corpus[fmt.Sprintf("generated %d", i)] = sql
	}
	return corpus
}

func FuzzInert(f *testing.F) {
	for _, sql := range testStrings(f) {
		f.Add(sql)
	}
	for _, sql := range generated(200) {
		f.Add(sql)
	}
	f.Fuzz(func(t *testing.T, sql string) { checkInertSound(t, "fuzz", sql) })
}

// testStrings returns the string literals of this package's test files.
func testStrings(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, file := range files {
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil {
					out[fset.Position(lit.Pos()).String()] = s
				}
			}
			return true
		})
	}
	if len(out) < 100 {
		t.Fatalf("only %d string literals in %v", len(out), files)
	}
	return out
}

// repoSQL returns the .sql files of the repository and their Up sections.
func repoSQL(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == ".bench" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".sql") {
			return nil
		}
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out[path] = string(body)
		if up, err := SplitGoose(body, false); err == nil {
			out[path+" (Up)"] = up
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no .sql file in the repository")
	}
	return out
}

// generated returns n migrations mixing statements the rules look at with
// ones they do not, written with the comments, strings, quoted names and
// dollar quotes a lexer can trip on.
func generated(n int) []string {
	inert := []string{
		"INSERT INTO users (name) VALUES ('a; DROP TABLE users')",
		"INSERT INTO users (name) VALUES (E'it\\'s; TRUNCATE users')",
		"UPDATE orders SET note = 'x;y' WHERE id = 1",
		"DELETE FROM orders WHERE note = $$;DROP TABLE orders;$$",
		`INSERT INTO "weird;name" ("a;b") VALUES (1)`,
		"COMMENT ON TABLE users IS 'ALTER TABLE users DROP COLUMN a; '",
		"GRANT SELECT ON users TO reader",
		"SET lock_timeout = '5s'",
		"SELECT set_config('search_path', 'public', false)",
		"CREATE OR REPLACE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $fn$ BEGIN DROP TABLE users; TRUNCATE orders; END $fn$",
		"CREATE FUNCTION g() RETURNS int LANGUAGE sql AS 'SELECT 1; DROP TABLE users'",
		"CREATE VIEW v AS SELECT * FROM users",
		"CREATE SEQUENCE s",
		"CREATE TYPE mood AS ENUM ('sad', 'ok')",
		"CREATE EXTENSION IF NOT EXISTS pgcrypto",
		"REFRESH MATERIALIZED VIEW mv",
		"ANALYZE users",
	}
	risky := []string{
		"DROP TABLE users",
		"DROP TABLE IF EXISTS t",
		"TRUNCATE orders",
		"ALTER TABLE orders DROP COLUMN note",
		"ALTER TABLE orders ALTER COLUMN total TYPE numeric",
		"ALTER TABLE people RENAME TO users",
		"ALTER TABLE users SET SCHEMA archive",
		"CREATE TABLE t2 (a int)",
		"CREATE TABLE IF NOT EXISTS t3 (a int)",
		"CREATE UNLOGGED TABLE t4 (a int)",
		"CREATE TABLE t5 AS SELECT 1 AS a",
		"CREATE MATERIALIZED VIEW mv2 AS SELECT 1",
		"CREATE INDEX ON orders (a)",
		"CREATE UNIQUE INDEX u ON users (email)",
		"CREATE SCHEMA s2",
		"DROP SCHEMA s CASCADE",
		"SELECT * INTO t6 FROM users",
		"WITH x AS (SELECT 1) SELECT * INTO t7 FROM x",
		"DO $$ BEGIN DROP TABLE users; END $$",
		"DO 'BEGIN TRUNCATE orders; END'",
		"ALTER TABLE users ADD PRIMARY KEY (id)",
	}
	noise := []string{"", "\n", " ", "-- DROP TABLE users;\n", "/* TRUNCATE orders; */ ", "/* a /* nested; */ b; */\n"}
	r := rand.New(rand.NewPCG(16, 16))
	out := make([]string, n)
	for i := range out {
		var b strings.Builder
		b.WriteString("-- +goose Up\n")
		for range 1 + r.IntN(4) {
			stmt := inert[r.IntN(len(inert))]
			if r.IntN(4) == 0 { // a quarter of the statements may matter
				stmt = risky[r.IntN(len(risky))]
			}
			b.WriteString(noise[r.IntN(len(noise))] + stmt + ";" + noise[r.IntN(len(noise))])
		}
		out[i] = b.String()
	}
	return out
}

// TestParseCache: a parse tree is read back from the cache folder by the
// SHA-256 of its SQL (planted here: the tree of another statement), and
// written there on first parse.
func TestParseCache(t *testing.T) {
	dir := t.TempDir()
	SetCacheDir(dir)
	t.Cleanup(func() { SetCacheDir("") })
	clearMem := func() {
		cache.Lock()
		cache.mem = map[[32]byte][]byte{}
		cache.Unlock()
	}
	clearMem()
	const sql = "CREATE INDEX ON cached (a);"
	if _, err := Migration(sql, nil, DefaultIndexThreshold); err != nil {
		t.Fatal(err)
	}
	key := cacheKey(sql)
	file := filepath.Join(dir, fmt.Sprintf("%x", key[:]))
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("no cache file after parsing: %v", err)
	}
	clearMem()
	planted, err := pg_query.Parse("DROP TABLE planted;")
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(planted)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	findings, err := Migration(sql, nil, DefaultIndexThreshold)
	if err != nil || len(findings) != 1 || findings[0].Rule != RuleDropTable {
		t.Fatalf("Migration with a planted cache entry: %v, %v; want the planted DROP TABLE", findings, err)
	}
}
