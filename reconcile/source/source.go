// Package source gets the desired-state files that `dbops run` reconciles:
// from a git branch or a watched folder. Every revision is materialised as an
// immutable snapshot folder, so the loop can keep using the files of the last
// known good revision while a newer one is rejected.
package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Revision is one snapshot of the desired state.
type Revision struct {
	ID   string // git commit hash; for a folder "sha256:<hex>" of its files (paths+modes+contents)
	Root string // snapshot folder: the whole repository / watched folder at that revision (immutable)
	Path string // folder holding the stack YAML: Root joined with the configured subpath
}

// Source yields revisions of the desired state.
type Source interface {
	// Fetch brings the source up to date and returns the revision at its head.
	// It materialises a new snapshot only when the revision changed.
	Fetch(ctx context.Context) (Revision, error)
	// Changed is signalled (non-blocking, coalesced) when the source may have
	// a new revision; a git source never signals it (its channel is nil).
	Changed() <-chan struct{}
	// Release deletes snapshots other than those of the given revision IDs.
	Release(keep ...string)
	Close() error
}

// ErrUnverified is wrapped by Fetch errors for a head commit that is not
// signed by a trusted key; Fetch then returns a Revision with only its ID set.
var ErrUnverified = errors.New("revision is not signed by a trusted key")

// Snapshot folder names inside a cache dir: gitPrefix+hash for a commit,
// dirPrefix+hex for a folder revision "sha256:<hex>"; tmpPrefix while written.
const (
	gitPrefix = "rev-"
	dirPrefix = "snap-"
	tmpPrefix = ".tmp-"
	shaPrefix = "sha256:"
)

// snapshotName returns the folder name of the snapshot of revision id.
func snapshotName(id string) string {
	if hex, ok := strings.CutPrefix(id, shaPrefix); ok {
		return dirPrefix + hex
	}
	return gitPrefix + id
}

// subPath cleans a configured subpath: "" for the root; an absolute path or
// one leaving the root is an error.
func subPath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	c := filepath.Clean(filepath.FromSlash(p))
	if c == "." {
		return "", nil
	}
	if !filepath.IsLocal(c) {
		return "", fmt.Errorf("path %q must be relative and stay inside the source", p)
	}
	return c, nil
}

// materialise returns the snapshot folder of id in cacheDir, calling write on
// a fresh temporary folder and renaming it into place when it does not exist
// yet, so a snapshot folder is either complete or absent.
func materialise(cacheDir, id string, write func(tmp string) error) (string, error) {
	dst := filepath.Join(cacheDir, snapshotName(id))
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
		return dst, nil
	}
	tmp, err := os.MkdirTemp(cacheDir, tmpPrefix+snapshotName(id)+"-")
	if err != nil {
		return "", fmt.Errorf("snapshot %s: %w", id, err)
	}
	if err := write(tmp); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("snapshot %s: %w", id, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("snapshot %s: %w", id, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.RemoveAll(tmp)
		if fi, serr := os.Stat(dst); serr == nil && fi.IsDir() {
			return dst, nil // written meanwhile by another process
		}
		return "", fmt.Errorf("snapshot %s: %w", id, err)
	}
	return dst, nil
}

// release deletes the snapshots in cacheDir whose revision is not in keep,
// and leftovers of interrupted snapshot writes.
func release(cacheDir string, keep []string) {
	kept := make(map[string]bool, len(keep))
	for _, id := range keep {
		kept[snapshotName(id)] = true
	}
	entries, err := os.ReadDir(cacheDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		n := e.Name()
		isSnap := strings.HasPrefix(n, gitPrefix) || strings.HasPrefix(n, dirPrefix)
		if (isSnap && !kept[n]) || strings.HasPrefix(n, tmpPrefix) {
			os.RemoveAll(filepath.Join(cacheDir, n))
		}
	}
}

// removeTemps deletes leftovers of interrupted snapshot writes in cacheDir.
func removeTemps(cacheDir string) {
	matches, _ := filepath.Glob(filepath.Join(cacheDir, tmpPrefix+"*"))
	for _, m := range matches {
		os.RemoveAll(m)
	}
}
