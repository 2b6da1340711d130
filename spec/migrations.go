package spec

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	_ "unsafe" // go:linkname to goose's SQL parser

	_ "github.com/pressly/goose/v3" // links the parser below
)

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

// checkMigrationFiles refuses migration files that resolve outside the
// repository root (a symlink could make dbops send any file to the server)
// and files goose cannot parse, so both fail validate, not apply.
func checkMigrationFiles(dir, repo string, versions map[int64]string) []string {
	var errs []string
	names := make([]string, 0, len(versions))
	for _, name := range versions {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		path := filepath.Join(dir, name)
		real, err := filepath.EvalSymlinks(path)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", name, pathErr(err)))
			continue
		}
		if rel, err := filepath.Rel(repo, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			errs = append(errs, fmt.Sprintf("%s resolves to %s, outside the repository root %s", name, real, repo))
			continue
		}
		if info, err := os.Stat(real); err != nil || !info.Mode().IsRegular() {
			errs = append(errs, fmt.Sprintf("%s is not a regular file", name))
			continue
		}
		if _, err := ParseMigration(dir, name); err != nil {
			errs = append(errs, fmt.Sprintf("goose cannot parse %s: %v", name, err))
		}
	}
	return errs
}
