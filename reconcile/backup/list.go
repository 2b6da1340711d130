package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/amanat/dbops/spec"
)

// Backup is one backup of a job found in its destination.
type Backup struct {
	ID           string   `json:"id"`   // data file name without extension
	File         string   `json:"file"` // path of the data file
	ManifestFile string   `json:"manifestFile,omitempty"`
	Manifest     Manifest `json:"manifest"` // zero when missing or unreadable
	// Counted: manifest present and matching, file present, verified.
	// Only counted backups count towards retention.
	Counted bool   `json:"counted"`
	Reason  string `json:"reason,omitempty"` // why not counted
	// KeptBy names the retention rules that keep it (set by Prune).
	KeptBy []string `json:"keptBy,omitempty"`

	bucket *bucketStore // the s3:// destination it was listed from; nil for a folder
}

// stampPattern matches the time part of a data file name (freeName).
var stampPattern = regexp.MustCompile(`^\d{8}T\d{6}Z(\.\d+)?$`)

// Time is the backup's time for ordering: its manifest's start time.
func (b Backup) Time() time.Time { return b.Manifest.StartedAt }

// List returns the job's backups in its destination, newest first (by
// manifest time; backups without a manifest last). It checks each
// manifest against its data file's presence and size; ListChecked also
// re-hashes the files. A missing destination has no backups.
func List(dir string, job Job) ([]Backup, error) {
	if spec.IsS3(dir) {
		j := job
		j.Destination = dir
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		return listBucket(ctx, j)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("backup destination %s: %w", dir, err)
	}
	prefix := jobPrefix(job.Stack, job.Name)
	described := map[string]bool{}
	var out []Backup
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, manifestSuffix) || e.IsDir() {
			continue
		}
		b := Backup{ManifestFile: filepath.Join(dir, name), ID: strings.TrimSuffix(name, manifestSuffix)}
		m, err := ReadManifest(b.ManifestFile)
		if err != nil && m.Stack == "" {
			if strings.HasPrefix(name, prefix) {
				b.Reason = "manifest unreadable: " + err.Error()
				out = append(out, b)
			}
			continue
		}
		described[m.File] = true // by any job's manifest
		if m.Stack != job.Stack || m.Job != job.Name {
			continue
		}
		b.Manifest = m
		if m.File != "" && filepath.Base(m.File) == m.File {
			b.File = filepath.Join(dir, m.File)
		}
		b.Reason = quickCheck(b, err)
		b.Counted = b.Reason == ""
		out = append(out, b)
	}
	for _, e := range entries {
		name := e.Name()
		ext := filepath.Ext(name)
		rest, ok := strings.CutPrefix(strings.TrimSuffix(name, ext), prefix)
		if ok && stampPattern.MatchString(rest) && (ext == ".dump" || ext == ".rdb") && !described[name] && !e.IsDir() {
			out = append(out, Backup{ID: strings.TrimSuffix(name, ext), File: filepath.Join(dir, name), Reason: "no manifest"})
		}
	}
	sortNewestFirst(out)
	return out, nil
}

// quickCheck returns why a backup with a parsed manifest is not counted.
func quickCheck(b Backup, readErr error) string {
	if r := quickCheckMeta(b, readErr); r != "" {
		return r
	}
	m := b.Manifest
	fi, err := os.Stat(b.File)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "data file missing"
	case err != nil:
		return err.Error()
	case fi.Size() != m.Size:
		return fmt.Sprintf("data file is %d bytes, the manifest says %d", fi.Size(), m.Size)
	}
	return ""
}

// quickCheckMeta is what quickCheck reads in the manifest alone.
func quickCheckMeta(b Backup, readErr error) string {
	m := b.Manifest
	switch {
	case readErr != nil:
		return "manifest unreadable: " + readErr.Error()
	case b.File == "":
		return fmt.Sprintf("manifest names no valid file (%q)", m.File)
	case ManifestName(m.File) != filepath.Base(b.ManifestFile):
		return fmt.Sprintf("manifest %s describes another file, %s", filepath.Base(b.ManifestFile), m.File)
	case m.Verification.Method == VerifyNone || m.Verification.Method == "":
		return "not verified"
	case !m.Verification.OK:
		return "verification failed: " + m.Verification.Error
	case m.Source == SourceRedis && strings.Contains(m.Verification.Detail, "walk stopped"):
		// Recorded as verified by a dbops that stopped at record types it
		// did not know (before hash-field TTLs were read).
		return "NOT verified: an older dbops stopped reading the RDB early (" + m.Verification.Detail + ")"
	}
	return ""
}

// ListChecked is List, then the SHA-256 of every counted backup's file
// compared with its manifest; a mismatch makes it uncounted. Hashes are
// cached in memory by path, size and modification time, so a long-running
// loop reads each file once.
//
// On object storage the objects are not downloaded: their size and ETag
// are compared with the manifest's (verification and restore hash them).
func ListChecked(ctx context.Context, dir string, job Job) ([]Backup, error) {
	if spec.IsS3(dir) {
		j := job
		j.Destination = dir
		return listBucket(ctx, j)
	}
	bs, err := List(dir, job)
	if err != nil {
		return nil, err
	}
	for i := range bs {
		if !bs[i].Counted {
			continue
		}
		sum, err := cachedHash(ctx, bs[i].File)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		switch {
		case err != nil:
			bs[i].Counted, bs[i].Reason = false, err.Error()
		case sum != bs[i].Manifest.SHA256:
			bs[i].Counted, bs[i].Reason = false, fmt.Sprintf("checksum mismatch: SHA-256 %s, the manifest says %s", sum, bs[i].Manifest.SHA256)
		}
	}
	return bs, nil
}

type hashKey struct {
	path string
	size int64
	mod  time.Time
}

var hashCache sync.Map // hashKey → string

func cachedHash(ctx context.Context, path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	k := hashKey{path, fi.Size(), fi.ModTime()}
	if s, ok := hashCache.Load(k); ok {
		return s.(string), nil
	}
	_, sum, err := hashFile(ctx, path)
	if err == nil {
		hashCache.Store(k, sum)
	}
	return sum, err
}

func sortNewestFirst(bs []Backup) {
	slices.SortStableFunc(bs, func(a, b Backup) int {
		if c := b.Time().Compare(a.Time()); c != 0 {
			return c
		}
		if c := b.Manifest.FinishedAt.Compare(a.Manifest.FinishedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// Newest returns the newest counted backup.
func Newest(bs []Backup) (Backup, bool) {
	var best Backup
	found := false
	for _, b := range bs {
		if b.Counted && (!found || b.Time().After(best.Time())) {
			best, found = b, true
		}
	}
	return best, found
}

// LastStarted returns the start of the newest backup attempt that left a
// manifest, counted or not: the reference time to seed a Scheduler with.
// Zero when there is none.
func LastStarted(bs []Backup) time.Time {
	var t time.Time
	for _, b := range bs {
		if b.Time().After(t) {
			t = b.Time()
		}
	}
	return t
}

// Delete removes a backup: its manifest first (so it stops counting at
// once), then its data file. Missing files are not an error.
func Delete(b Backup) error {
	if b.bucket != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		return deleteBucket(ctx, b)
	}
	var errs []error
	for _, p := range []string{b.ManifestFile, b.File} {
		if p == "" {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	dir := filepath.Dir(b.File)
	if b.File == "" {
		dir = filepath.Dir(b.ManifestFile)
	}
	if err := syncDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete backup %s: %w", b.ID, err)
	}
	return nil
}
