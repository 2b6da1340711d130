package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	_ "unsafe" // go:linkname to goose's SQL parser

	_ "github.com/pressly/goose/v3" // links the parser below
)

// Migration formats of spec.postgres.migrations.format.
const (
	FormatGoose   = "goose"
	FormatDrizzle = "drizzle"
)

// drizzle-orm's defaults for migrationsTable and migrationsSchema.
const (
	DefaultDrizzleTable  = "__drizzle_migrations"
	DefaultDrizzleSchema = "drizzle"
)

// JournalPath is drizzle-kit's journal, relative to the migrations folder.
const JournalPath = "meta/_journal.json"

// Breakpoint separates the statements of a drizzle-kit migration.
const Breakpoint = "--> statement-breakpoint"

// MigrationRef names one migration: a goose version or a drizzle tag.
type MigrationRef struct {
	Version int64
	Tag     string
}

// String returns the tag or the version number.
func (r MigrationRef) String() string {
	if r.Tag != "" {
		return r.Tag
	}
	return strconv.FormatInt(r.Version, 10)
}

// UnmarshalJSON accepts a version number, or a tag or number in a string.
func (r *MigrationRef) UnmarshalJSON(b []byte) error {
	num, str, err := jsonRef(b)
	switch {
	case err != nil:
		return err
	case num != nil:
		*r = MigrationRef{Version: *num}
		return nil
	case str != nil:
		ref, err := parseRef(*str)
		if err != nil { // a MigrationRef is only ever the baseline
			return FieldError{Field: "spec.postgres.migrations.baseline", Msg: err.Error()}
		}
		*r = ref
		return nil
	}
	return fmt.Errorf("must be a migration version (goose) or tag (drizzle)")
}

// jsonRef decodes a JSON value naming a migration: a number (read from its
// text, so a value beyond int64 is an error that says so, not a rounded
// float) or a string. Both are nil for any other JSON value.
func jsonRef(b []byte) (num *int64, str *string, err error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, nil, err
	}
	switch v := v.(type) {
	case float64:
		n, err := parseVersionLiteral(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, nil, err
		}
		return &n, nil, nil
	case string:
		return nil, &v, nil
	}
	return nil, nil, nil
}

// MarshalJSON writes the tag or the version number.
func (r MigrationRef) MarshalJSON() ([]byte, error) {
	if r.Tag != "" {
		return json.Marshal(r.Tag)
	}
	return []byte(strconv.FormatInt(r.Version, 10)), nil
}

// numeric is what parseRef reads as a number, as the schema's
// migrationVersion and migrationTag tell them apart.
var numeric = regexp.MustCompile(`^[+-]?[0-9]+$`)

// parseRef reads a number as a goose version and anything else as a tag.
// A number out of range is an error, not a tag.
func parseRef(s string) (MigrationRef, error) {
	if numeric.MatchString(s) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return MigrationRef{}, fmt.Errorf("%q is not a migration version (0 to 2^63-1)", s)
		}
		return MigrationRef{Version: n}, nil
	}
	if s == "" || strings.ContainsAny(s, "/\\") {
		return MigrationRef{}, fmt.Errorf("%q is not a migration version (goose) or tag (drizzle)", s)
	}
	return MigrationRef{Tag: s}, nil
}

// JournalEntry is one entry of drizzle-kit's meta/_journal.json.
type JournalEntry struct {
	Idx         int    `json:"idx"`
	When        int64  `json:"when"`
	Tag         string `json:"tag"`
	Breakpoints bool   `json:"breakpoints"`
}

// File is the entry's SQL file: <tag>.sql, as drizzle's migrator reads it.
func (e JournalEntry) File() string { return e.Tag + ".sql" }

// ReadJournal reads drizzle-kit's journal in dir. The entries come in
// journal order, the order drizzle's migrator runs them in (file names do
// not count). It fails where drizzle's migrator would, and also on what
// would make it skip a migration silently: a `when` not above the one
// before it (drizzle counts a migration as applied when its `when` is at
// most the largest recorded one).
func ReadJournal(dir string) ([]JournalEntry, error) {
	data, err := os.ReadFile(filepath.Join(dir, JournalPath))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", JournalPath, err)
	}
	var j struct {
		Entries *[]JournalEntry `json:"entries"`
	}
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("%s: %w", JournalPath, err)
	}
	if j.Entries == nil {
		return nil, fmt.Errorf("%s has no entries list", JournalPath)
	}
	entries := *j.Entries
	seen := map[string]bool{}
	for i, e := range entries {
		if e.Tag == "" || strings.ContainsAny(e.Tag, "/\\") {
			return nil, fmt.Errorf("%s: entry %d has tag %q: want a file name without .sql", JournalPath, i, e.Tag)
		}
		if seen[e.Tag] {
			return nil, fmt.Errorf("%s: tag %s appears twice", JournalPath, e.Tag)
		}
		seen[e.Tag] = true
		if i > 0 && e.When <= entries[i-1].When {
			return nil, fmt.Errorf("%s: %s has when %d, not after %s's %d: drizzle's migrator would skip it on a database at %s; give it a later when",
				JournalPath, e.Tag, e.When, entries[i-1].Tag, entries[i-1].When, entries[i-1].Tag)
		}
		body, err := os.ReadFile(filepath.Join(dir, e.File()))
		if err != nil {
			return nil, fmt.Errorf("%s lists %s but the file cannot be read: %v", JournalPath, e.File(), errors.Unwrap(err))
		}
		if !utf8.Valid(body) {
			return nil, fmt.Errorf("%s is not UTF-8: drizzle's migrator reads (and hashes) migrations as UTF-8 text", e.File())
		}
	}
	return entries, nil
}

// DetectFormat says which tool wrote the migrations in dir: drizzle when
// drizzle-kit's journal is there, goose otherwise.
func DetectFormat(dir string) string {
	if _, err := os.Stat(filepath.Join(dir, JournalPath)); err == nil {
		return FormatDrizzle
	}
	return FormatGoose
}

// gooseUp matches an Up annotation as goose reads it: case-insensitive.
var gooseUp = regexp.MustCompile(`(?mi)^--\s*\+goose\s+up\b`)

// checkMigrationSet detects the format of m.Path when not set, fills in the
// format's default table, and checks the migrations and m's references to
// them. m.Path is resolved.
func checkMigrationSet(m *Migrations, repo string, bad func(field, format string, args ...any)) {
	if m.Format == "" {
		m.Format = DetectFormat(m.Path)
	}
	if m.Format == FormatDrizzle {
		checkDrizzle(m, repo, bad)
		return
	}
	if m.Table == "" {
		m.Table = DefaultMigrationTable
	}
	if m.Schema != "" {
		bad("schema", "is for drizzle's migrationsSchema; for goose write table: %s.%s", m.Schema, m.Table)
	}
	// Only error messages use the hint: reading every file for it is for them.
	lazyHint := sync.OnceValue(func() string { return drizzleHint(m.Path) })
	versions, err := MigrationVersions(m.Path)
	if err != nil {
		bad("dir", "%v%s", err, lazyHint())
		return
	}
	if len(versions) == 0 {
		bad("dir", "%s holds no goose migrations (files like 00001_name.sql)%s", m.Dir, lazyHint())
		return
	}
	names := make([]string, 0, len(versions))
	for _, v := range slices.Sorted(maps.Keys(versions)) {
		names = append(names, versions[v])
	}
	for _, name := range names {
		if msg := checkMigrationFile(m.Path, repo, name); msg != "" {
			bad("dir", "%s", msg)
			continue
		}
		body, err := os.ReadFile(filepath.Join(m.Path, name))
		if err != nil {
			bad("dir", "%s: %v", name, pathErr(err))
			continue
		}
		if !gooseUp.Match(body) {
			bad("dir", "%s has no -- +goose Up annotation: goose would run nothing from it%s", name, lazyHint())
			continue
		}
		if _, err := ParseMigration(m.Path, name); err != nil {
			bad("dir", "goose cannot parse %s: %v", name, err)
		}
	}
	if m.Target.Pinned {
		switch {
		case m.Target.Tag != "":
			bad("target", "%q is not a goose version (a number present in %s) or \"latest\"%s", m.Target.Tag, m.Dir, lazyHint())
		case m.Target.Version != 0 && versions[m.Target.Version] == "":
			bad("target", "version %d is not in %s", m.Target.Version, m.Dir)
		}
	}
	if b := m.Baseline; b != nil {
		switch {
		case b.Tag != "":
			bad("baseline", "%q is not a goose version (a number present in %s)", b.Tag, m.Dir)
		case versions[b.Version] == "":
			bad("baseline", "version %d is not in %s", b.Version, m.Dir)
		}
	}
}

// drizzleHint suggests format: drizzle for a folder drizzle-kit wrote.
func drizzleHint(dir string) string {
	if _, err := os.Stat(filepath.Join(dir, JournalPath)); err == nil {
		return "; the folder looks like drizzle-kit output (it has " + JournalPath + "): set format: drizzle"
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.sql"))
	for _, f := range files {
		if body, err := os.ReadFile(f); err == nil && bytes.Contains(body, []byte(Breakpoint)) {
			return "; " + filepath.Base(f) + " looks like drizzle-kit output (" + Breakpoint + "): set format: drizzle and keep drizzle-kit's " + JournalPath + " beside the migrations"
		}
	}
	return ""
}

func checkDrizzle(m *Migrations, repo string, bad func(field, format string, args ...any)) {
	if m.Table == "" {
		m.Table = DefaultDrizzleTable
	}
	if m.Schema == "" {
		m.Schema = DefaultDrizzleSchema
	}
	if strings.Contains(m.Table, ".") {
		bad("table", "%s: for drizzle, name the schema in migrations.schema (drizzle's migrationsSchema) and the table alone", m.Table)
	}
	if m.AllowDown {
		bad("allowDown", "drizzle-kit writes no down migrations; remove allowDown")
	}
	if _, err := os.Stat(filepath.Join(m.Path, JournalPath)); errors.Is(err, os.ErrNotExist) {
		bad("dir", "%s has no %s: drizzle's migrator needs the journal drizzle-kit writes beside the migrations", m.Dir, JournalPath)
		return
	}
	// The journal and the files it lists go through the same refusals as
	// goose files: a symlink out of the repository or a non-file is named
	// before anything reads it.
	if msg := checkMigrationFile(m.Path, repo, JournalPath); msg != "" {
		bad("dir", "%s", msg)
		return
	}
	if tags, err := journalTags(m.Path); err == nil {
		refused := false
		for _, tag := range tags {
			if _, err := os.Lstat(filepath.Join(m.Path, tag+".sql")); errors.Is(err, fs.ErrNotExist) {
				continue // ReadJournal names the journal that lists it
			}
			if msg := checkMigrationFile(m.Path, repo, tag+".sql"); msg != "" {
				bad("dir", "%s", msg)
				refused = true
			}
		}
		if refused {
			return
		}
	}
	entries, err := ReadJournal(m.Path)
	if err != nil {
		bad("dir", "%s: %v", m.Dir, err)
		return
	}
	if len(entries) == 0 {
		bad("dir", "%s: %s lists no migrations", m.Dir, JournalPath)
		return
	}
	has := func(tag string) bool {
		return slices.ContainsFunc(entries, func(e JournalEntry) bool { return e.Tag == tag })
	}
	if t := m.Target; t.Pinned {
		switch {
		case t.Tag == "":
			bad("target", "drizzle migrations are named by tag, e.g. %s; %d is not one", entries[len(entries)-1].Tag, t.Version)
		case !has(t.Tag):
			bad("target", "%s is not in %s", t.Tag, filepath.Join(m.Dir, JournalPath))
		}
	}
	if b := m.Baseline; b != nil {
		switch {
		case b.Tag == "":
			bad("baseline", "drizzle migrations are named by tag, e.g. %s; %d is not one", entries[0].Tag, b.Version)
		case !has(b.Tag):
			bad("baseline", "%s is not in %s", b.Tag, filepath.Join(m.Dir, JournalPath))
		}
	}
}

// journalTags reads only the tags of drizzle-kit's journal, skipping the
// ones ReadJournal refuses (it reports them), so the files can be checked
// before they are read.
func journalTags(dir string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, JournalPath))
	if err != nil {
		return nil, err
	}
	var j struct {
		Entries []struct {
			Tag string `json:"tag"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, err
	}
	var tags []string
	for _, e := range j.Entries {
		if e.Tag != "" && !strings.ContainsAny(e.Tag, "/\\") {
			tags = append(tags, e.Tag)
		}
	}
	return tags, nil
}

// gooseParsed mirrors goose's internal sqlparser.ParsedSQL.
type gooseParsed struct {
	UseTx    bool
	Up, Down []string
}

// gooseParseAll is goose's own migration file parser: the function its
// Provider calls on each SQL file before running it (annotations,
// StatementBegin/End, NO TRANSACTION, ENVSUB). goose v3.30 keeps it in an
// internal package and exports no parser, so it is reached by name; a
// hand-written parser would disagree with goose on exactly the files that
// matter. TestGooseParser pins its behaviour, so a goose upgrade that
// changes it fails the tests instead of passing silently.
//
//go:linkname gooseParseAll github.com/pressly/goose/v3/internal/sqlparser.ParseAllFromFS
func gooseParseAll(fsys fs.FS, filename string, debug bool) (*gooseParsed, error)

// ParseMigration parses one goose SQL migration file in dir as goose will at
// apply time. The error is goose's, naming the file.
func ParseMigration(dir, name string) (useTx bool, err error) {
	p, err := gooseParseAll(os.DirFS(dir), name, false)
	if err != nil {
		return false, err
	}
	return p.UseTx, nil
}

// checkMigrationFile refuses a migration file (goose SQL, drizzle SQL or
// drizzle's journal; name is relative to dir) that resolves outside the
// repository root (a symlink could make dbops send any file to the
// server) or is not a regular file, so it fails validate, not apply.
// It returns "" for a file that may be read.
func checkMigrationFile(dir, repo, name string) string {
	real, err := filepath.EvalSymlinks(filepath.Join(dir, name))
	if err != nil {
		return fmt.Sprintf("%s: %v", name, pathErr(err))
	}
	if rel, err := filepath.Rel(repo, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Sprintf("%s resolves to %s, outside the repository root %s", name, real, repo)
	}
	if info, err := os.Stat(real); err != nil || !info.Mode().IsRegular() {
		return fmt.Sprintf("%s is not a regular file", name)
	}
	return ""
}
