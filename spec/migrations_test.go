package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// journal writes a drizzle-kit journal for (tag, when) pairs.
func journal(entries ...any) string {
	var b strings.Builder
	b.WriteString(`{"version":"7","dialect":"postgresql","entries":[`)
	for i := 0; i < len(entries); i += 2 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"idx":` + strconv.Itoa(i/2) + `,"version":"7","when":` + strconv.Itoa(entries[i+1].(int)) + `,"tag":"` + entries[i].(string) + `","breakpoints":true}`)
	}
	b.WriteString("]}")
	return b.String()
}

const drizzleSQL = "CREATE TABLE \"a\" (\"id\" serial PRIMARY KEY);\n--> statement-breakpoint\nCREATE INDEX ON \"a\" (\"id\");"

func pgStack(migrations string) string {
	return stackDoc("a", "  postgres:\n    url: postgres://db/x\n    migrations: "+migrations+"\n")
}

func TestDrizzleFormatDetectedAndDefaults(t *testing.T) {
	tests := []struct {
		name       string
		files      map[string]string
		migrations string
		format     string
		table      string
		schema     string
		target     string
		baseline   string
	}{
		{
			name: "journal means drizzle",
			files: map[string]string{"m/meta/_journal.json": journal("0000_init", 1700000000000, "0001_more", 1700000001000),
				"m/0000_init.sql": drizzleSQL, "m/0001_more.sql": drizzleSQL},
			migrations: "{dir: m, target: 0001_more, baseline: 0000_init}",
			format:     FormatDrizzle, table: DefaultDrizzleTable, schema: DefaultDrizzleSchema, target: "0001_more", baseline: "0000_init",
		},
		{
			name: "timestamp prefixes, journal order is not name order",
			files: map[string]string{"m/meta/_journal.json": journal("20250102000000_b", 1700000000000, "20250101000000_a", 1700000001000),
				"m/20250101000000_a.sql": drizzleSQL, "m/20250102000000_b.sql": drizzleSQL},
			migrations: "{dir: m, table: migs, schema: ops}",
			format:     FormatDrizzle, table: "migs", schema: "ops", target: "latest",
		},
		{
			name:       "no journal means goose",
			files:      map[string]string{"m/00001_a.sql": migration, "m/00002_b.sql": migration},
			migrations: "{dir: m, baseline: 1}",
			format:     FormatGoose, table: DefaultMigrationTable, target: "latest", baseline: "1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.files[".git/HEAD"] = "x"
			tt.files["a.yaml"] = pgStack(tt.migrations)
			root := writeTree(t, tt.files)
			res, err := Load([]string{filepath.Join(root, "a.yaml")}, Options{Getenv: testEnv})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			m := res.Stacks[0].Spec.Postgres.Migrations
			if m.Format != tt.format || m.Table != tt.table || m.Schema != tt.schema || m.Target.String() != tt.target {
				t.Errorf("format %q table %q schema %q target %q; want %q %q %q %q", m.Format, m.Table, m.Schema, m.Target, tt.format, tt.table, tt.schema, tt.target)
			}
			got := ""
			if m.Baseline != nil {
				got = m.Baseline.String()
			}
			if got != tt.baseline {
				t.Errorf("baseline %q, want %q", got, tt.baseline)
			}
		})
	}
}

func TestMigrationFolderErrors(t *testing.T) {
	okJournal := journal("0000_init", 1700000000000, "0001_more", 1700000001000)
	tests := []struct {
		name       string
		files      map[string]string
		migrations string
		want       []string
	}{
		{
			name:       "drizzle files without journal get a hint",
			files:      map[string]string{"m/0000_init.sql": drizzleSQL},
			migrations: "{dir: m}",
			want:       []string{`spec.postgres.migrations.dir: 0000_init.sql: migration version must be greater than zero; 0000_init.sql looks like drizzle-kit output (--> statement-breakpoint): set format: drizzle`},
		},
		{
			name:       "format goose on drizzle output",
			files:      map[string]string{"m/meta/_journal.json": okJournal, "m/0000_init.sql": drizzleSQL, "m/0001_more.sql": drizzleSQL},
			migrations: "{dir: m, format: goose}",
			want:       []string{`looks like drizzle-kit output (it has meta/_journal.json): set format: drizzle`},
		},
		{
			name:       "goose file without Up annotation",
			files:      map[string]string{"m/00001_a.sql": migration, "m/00002_b.sql": "CREATE TABLE b (id int);\n"},
			migrations: "{dir: m}",
			want:       []string{`spec.postgres.migrations.dir: 00002_b.sql has no -- +goose Up annotation`},
		},
		{
			name:       "drizzle without journal",
			files:      map[string]string{"m/0000_init.sql": drizzleSQL},
			migrations: "{dir: m, format: drizzle}",
			want:       []string{`spec.postgres.migrations.dir: m has no meta/_journal.json`},
		},
		{
			name:       "journal lists a missing file",
			files:      map[string]string{"m/meta/_journal.json": okJournal, "m/0000_init.sql": drizzleSQL},
			migrations: "{dir: m}",
			want:       []string{`meta/_journal.json lists 0001_more.sql but the file cannot be read`},
		},
		{
			name: "when not increasing",
			files: map[string]string{"m/meta/_journal.json": journal("0000_init", 1700000001000, "0001_more", 1700000000000),
				"m/0000_init.sql": drizzleSQL, "m/0001_more.sql": drizzleSQL},
			migrations: "{dir: m}",
			want:       []string{`0001_more has when 1700000000000, not after 0000_init's 1700000001000: drizzle's migrator would skip it`},
		},
		{
			name:       "drizzle target, baseline and options",
			files:      map[string]string{"m/meta/_journal.json": okJournal, "m/0000_init.sql": drizzleSQL, "m/0001_more.sql": drizzleSQL},
			migrations: "{dir: m, target: 0009_nope, baseline: 3, allowDown: true, table: x.y}",
			want: []string{
				`spec.postgres.migrations.target: 0009_nope is not in m/meta/_journal.json`,
				`spec.postgres.migrations.baseline: drizzle migrations are named by tag, e.g. 0000_init; 3 is not one`,
				`spec.postgres.migrations.allowDown: drizzle-kit writes no down migrations`,
				`spec.postgres.migrations.table: x.y: for drizzle, name the schema in migrations.schema`,
			},
		},
		{
			name:       "goose target and baseline",
			files:      map[string]string{"m/00001_a.sql": migration},
			migrations: "{dir: m, target: 0003_x, baseline: 9, schema: s}",
			want: []string{
				`spec.postgres.migrations.target: "0003_x" is not a goose version`,
				`spec.postgres.migrations.baseline: version 9 is not in m`,
				`spec.postgres.migrations.schema: is for drizzle's migrationsSchema`,
			},
		},
		{
			name:       "not UTF-8",
			files:      map[string]string{"m/meta/_journal.json": journal("0000_init", 1), "m/0000_init.sql": "SELECT '\xff';"},
			migrations: "{dir: m}",
			want:       []string{`0000_init.sql is not UTF-8`},
		},
		{
			name: "drizzle file with a bad dbops annotation",
			files: map[string]string{"m/meta/_journal.json": okJournal, "m/0000_init.sql": drizzleSQL,
				"m/0001_more.sql": "-- dbops:lock-timeout soon\n" + drizzleSQL},
			migrations: "{dir: m}",
			want:       []string{`spec.postgres.migrations.dir: 0001_more.sql: line 1: dbops:lock-timeout: "soon" is not a duration`},
		},
		{
			name:       "unknown format",
			files:      map[string]string{"m/00001_a.sql": migration},
			migrations: "{dir: m, format: flyway}",
			want:       []string{`spec.postgres.migrations.format`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.files[".git/HEAD"] = "x"
			tt.files["a.yaml"] = pgStack(tt.migrations)
			root := writeTree(t, tt.files)
			t.Chdir(root)
			_, err := Load([]string{"a.yaml"}, Options{Getenv: testEnv})
			if err == nil {
				t.Fatal("Load succeeded, want errors")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q; got:\n%v", w, err)
				}
			}
		})
	}
}

func TestMigrationRefJSON(t *testing.T) {
	tests := []struct {
		in, want, str string
		tag           bool
	}{
		{in: `19`, want: `19`, str: "19"},
		{in: `"19"`, want: `19`, str: "19"},
		{in: `"0003_add_disputes"`, want: `"0003_add_disputes"`, str: "0003_add_disputes", tag: true},
		{in: `"20250101120000_init"`, want: `"20250101120000_init"`, str: "20250101120000_init", tag: true},
	}
	for _, tt := range tests {
		var r MigrationRef
		if err := json.Unmarshal([]byte(tt.in), &r); err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		out, _ := json.Marshal(r)
		if string(out) != tt.want || r.String() != tt.str || (r.Tag != "") != tt.tag {
			t.Errorf("%s: marshals %s, String %q, tag %q", tt.in, out, r.String(), r.Tag)
		}
		var tg Target
		if err := json.Unmarshal([]byte(tt.in), &tg); err != nil || !tg.Pinned || tg.String() != tt.str {
			t.Errorf("target %s: %+v %v", tt.in, tg, err)
		}
	}
	for _, bad := range []string{`-1`, `"-1"`, `"99999999999999999999"`, `1.5`, `""`, `"a/b"`, `true`} {
		var r MigrationRef
		if err := json.Unmarshal([]byte(bad), &r); err == nil {
			t.Errorf("%s accepted as %+v", bad, r)
		}
	}
}

// TestGooseParser pins goose's parser reached by go:linkname: a goose
// upgrade that changes it fails here.
func TestGooseParser(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"1.sql": "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\nSELECT 2;\n-- +goose StatementEnd\n-- +goose Down\nSELECT 3;\n",
		"2.sql": "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (c);\n",
	})
	if useTx, err := ParseMigration(dir, "1.sql"); err != nil || !useTx {
		t.Errorf("1.sql: useTx %v err %v", useTx, err)
	}
	if useTx, err := ParseMigration(dir, "2.sql"); err != nil || useTx {
		t.Errorf("2.sql: useTx %v err %v", useTx, err)
	}
	p, err := gooseParseAll(os.DirFS(dir), "1.sql", false)
	if err != nil || len(p.Up) != 1 || len(p.Down) != 1 || !strings.Contains(p.Up[0], "SELECT 2;") {
		t.Errorf("parsed %+v, %v", p, err)
	}
}

// TestDrizzleFilesChecked: the journal and the files it lists get goose
// files' refusals: a symlink out of the repository or a non-file fails
// validate before anything reads it.
func TestDrizzleFilesChecked(t *testing.T) {
	outside := writeTree(t, map[string]string{
		"evil.sql":     "DROP TABLE users;",
		"journal.json": journal("0000_init", 1700000000000, "0001_more", 1700000001000),
	})
	okJournal := journal("0000_init", 1700000000000, "0001_more", 1700000001000)
	tests := []struct {
		name  string
		files map[string]string
		links map[string]string // m/<key> → outside/<value>
		dirs  []string          // m/<dir> made a folder
		want  string
	}{
		{"symlinked SQL file outside the repository",
			map[string]string{"m/meta/_journal.json": okJournal, "m/0000_init.sql": drizzleSQL},
			map[string]string{"0001_more.sql": "evil.sql"}, nil,
			"spec.postgres.migrations.dir: 0001_more.sql resolves to " + filepath.Join(outside, "evil.sql") + ", outside the repository root"},
		{"symlinked journal outside the repository",
			map[string]string{"m/0000_init.sql": drizzleSQL, "m/0001_more.sql": drizzleSQL},
			map[string]string{"meta/_journal.json": "journal.json"}, nil,
			"spec.postgres.migrations.dir: meta/_journal.json resolves to " + filepath.Join(outside, "journal.json") + ", outside the repository root"},
		{"a listed tag that is a folder",
			map[string]string{"m/meta/_journal.json": okJournal, "m/0000_init.sql": drizzleSQL},
			nil, []string{"0001_more.sql"},
			"spec.postgres.migrations.dir: 0001_more.sql is not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.files[".git/HEAD"] = "x"
			tt.files["s.yaml"] = pgStack("{dir: ./m, format: drizzle}")
			root := writeTree(t, tt.files)
			for link, target := range tt.links {
				path := filepath.Join(root, "m", link)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(filepath.Join(outside, target), path); err != nil {
					t.Fatal(err)
				}
			}
			for _, d := range tt.dirs {
				if err := os.MkdirAll(filepath.Join(root, "m", d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			msg, _ := loadErr(t, root, "s.yaml", true)
			if !strings.Contains(msg, tt.want) {
				t.Errorf("got %q\nwant %q", msg, tt.want)
			}
		})
	}
}

// TestRevisionFilesDrizzle: a drizzle folder's revision holds the journal
// and the files it lists, and nothing else in the folder.
func TestRevisionFilesDrizzle(t *testing.T) {
	root := writeTree(t, map[string]string{
		"s.yaml":                    pgStack("{dir: ./m}"),
		"m/meta/_journal.json":      journal("0000_init", 1700000000000),
		"m/meta/0000_snapshot.json": "{}",
		"m/0000_init.sql":           drizzleSQL,
		"m/notes.txt":               "not a migration",
	})
	got, err := RevisionFiles([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		filepath.Join(root, "m", "0000_init.sql"),
		filepath.Join(root, "m", "meta", "_journal.json"),
		filepath.Join(root, "s.yaml"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("RevisionFiles = %q, want %q", got, want)
	}
}
