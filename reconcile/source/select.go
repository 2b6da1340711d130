package source

import (
	"path/filepath"
	"strings"

	"github.com/amanat/dbops/spec"
)

// revisionFilter keeps, below the watched folder, only what a revision is
// made of: the YAML stacks below path and the migration files they name
// (spec.RevisionFiles). A log written into the folder or backups stored
// below it then never make a new revision. When the folder holds no stacks
// at all, everything is kept, so the revision is loaded and rejected with
// the loader's message.
func revisionFilter(dir, path string) func(rel string, isDir bool) bool {
	files, err := spec.RevisionFiles([]string{filepath.Join(dir, path)})
	if err != nil {
		return nil
	}
	keep := map[string]bool{}
	dirs := map[string]bool{}
	for _, f := range files {
		rel, err := filepath.Rel(dir, f)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue // outside the folder: not in its snapshots either
		}
		rel = filepath.ToSlash(rel)
		keep[rel] = true
		for d := filepath.ToSlash(filepath.Dir(rel)); d != "." && d != "/"; d = filepath.ToSlash(filepath.Dir(d)) {
			dirs[d] = true
		}
	}
	return func(rel string, isDir bool) bool {
		if isDir {
			return dirs[rel]
		}
		return keep[rel]
	}
}
