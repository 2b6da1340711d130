package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	manifestSuffix = ".manifest.json"
	tempMarker     = ".tmp-"
	timeLayout     = "20060102T150405Z"
)

// jobPrefix starts the name of every data file of a job.
func jobPrefix(stack, job string) string { return stack + "-" + job + "-" }

// hiddenPrefix starts the job's lock and temporary files; the hash keeps
// stack "a-b"/job "c" apart from stack "a"/job "b-c".
func hiddenPrefix(stack, job string) string {
	sum := sha256.Sum256([]byte(stack + "\x00" + job))
	return "." + stack + "-" + job + "." + hex.EncodeToString(sum[:4])
}

func extension(source string) string {
	if source == SourceRedis {
		return ".rdb"
	}
	return ".dump"
}

// ManifestName returns the manifest file name of a data file name.
func ManifestName(file string) string {
	return strings.TrimSuffix(file, filepath.Ext(file)) + manifestSuffix
}

// destination prepares a job's folder: it creates it if needed, takes the
// job's lock (waiting for another process's run to end) and removes the
// temporary files a killed run left. The caller must call unlock.
func destination(ctx context.Context, job Job) (unlock func(), err error) {
	dir := job.Destination
	if dir == "" {
		return nil, errors.New("backup destination is not set")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("backup destination %s is not a writable folder: %w", dir, err)
	}
	lockPath := filepath.Join(dir, hiddenPrefix(job.Stack, job.Name)+".lock")
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("backup destination %s is not writable: %w", dir, err)
	}
	if err := lockFile(ctx, f); err != nil {
		f.Close()
		return nil, fmt.Errorf("backup destination %s: lock %s: %w", dir, filepath.Base(lockPath), err)
	}
	unlock = func() { unlockFile(f); f.Close() }
	// A probe proves the folder accepts new files (a read-only mount may
	// still open the existing lock file).
	probe, err := os.CreateTemp(dir, hiddenPrefix(job.Stack, job.Name)+tempMarker+"probe-*")
	if err != nil {
		unlock()
		return nil, fmt.Errorf("backup destination %s is not writable: %w", dir, err)
	}
	probe.Close()
	removeTemps(dir, job)
	return unlock, nil
}

// removeTemps deletes the job's leftover temporary files (called with the
// job's lock held, so no run of the job is writing them).
func removeTemps(dir string, job Job) {
	matches, _ := filepath.Glob(filepath.Join(dir, globEscape(hiddenPrefix(job.Stack, job.Name)+tempMarker)+"*"))
	for _, m := range matches {
		os.Remove(m)
	}
}

func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`)
	return r.Replace(s)
}

// tempFile is a file being written in the destination under a temporary
// name, hashed as it is written.
type tempFile struct {
	f    *os.File
	h    hash.Hash
	size int64
	done bool
}

func createTemp(job Job, suffix string) (*tempFile, error) {
	f, err := os.CreateTemp(job.Destination, hiddenPrefix(job.Stack, job.Name)+tempMarker+"*"+suffix)
	if err != nil {
		return nil, fmt.Errorf("backup destination %s is not writable: %w", job.Destination, err)
	}
	return &tempFile{f: f, h: sha256.New()}, nil
}

func (t *tempFile) Write(p []byte) (int, error) {
	n, err := t.f.Write(p)
	t.h.Write(p[:n])
	t.size += int64(n)
	return n, err
}

func (t *tempFile) path() string { return t.f.Name() }
func (t *tempFile) sum() string  { return hex.EncodeToString(t.h.Sum(nil)) }

// finish flushes the file to stable storage and closes it.
func (t *tempFile) finish() error {
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", t.path(), err)
	}
	return t.f.Close()
}

// publish renames the finished file to name in its folder, which it fsyncs.
func (t *tempFile) publish(name string) error {
	dir := filepath.Dir(t.path())
	if err := os.Rename(t.path(), filepath.Join(dir, name)); err != nil {
		return err
	}
	t.done = true
	return syncDir(dir)
}

// discard removes the file unless it was published.
func (t *tempFile) discard() {
	if !t.done {
		t.f.Close()
		os.Remove(t.path())
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// freeName returns a data file name for a backup started at t that is not
// taken in dir, with its manifest name not taken either.
func freeName(dir string, job Job, t time.Time) string {
	base := jobPrefix(job.Stack, job.Name) + t.UTC().Format(timeLayout)
	ext := extension(job.Source)
	for i := 0; ; i++ {
		name := base + ext
		if i > 0 {
			name = fmt.Sprintf("%s.%d%s", base, i, ext)
		}
		if !exists(filepath.Join(dir, name)) && !exists(filepath.Join(dir, ManifestName(name))) {
			return name
		}
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// WriteManifest writes m beside its data file in dir (temporary file,
// fsync, rename, fsync of dir), replacing any previous manifest.
func WriteManifest(dir string, m Manifest) error {
	if m.File == "" || filepath.Base(m.File) != m.File {
		return fmt.Errorf("manifest: bad file name %q", m.File)
	}
	if m.FormatVersion == "" {
		m.FormatVersion = ManifestFormat
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, hiddenPrefix(m.Stack, m.Job)+tempMarker+"*"+manifestSuffix)
	if err != nil {
		return fmt.Errorf("backup destination %s is not writable: %w", dir, err)
	}
	t := &tempFile{f: f, h: sha256.New()}
	defer t.discard()
	if _, err := t.Write(append(b, '\n')); err != nil {
		return err
	}
	if err := t.finish(); err != nil {
		return err
	}
	return t.publish(ManifestName(m.File))
}

// ReadManifest reads the manifest of a data file or a manifest path.
func ReadManifest(path string) (Manifest, error) {
	if !strings.HasSuffix(path, manifestSuffix) {
		path = filepath.Join(filepath.Dir(path), ManifestName(filepath.Base(path)))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Manifest{}, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", path, err)
	}
	if m.FormatVersion != ManifestFormat {
		return m, fmt.Errorf("%s: unknown formatVersion %q", path, m.FormatVersion)
	}
	return m, nil
}

// hashFile returns the size and SHA-256 of a file, reading it once.
func hashFile(ctx context.Context, path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, ctxReader{ctx, f}, make([]byte, 1<<20))
	if err != nil {
		return n, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// checkFile compares a data file with its manifest: size, then SHA-256.
func checkFile(ctx context.Context, path string, m Manifest) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Size() != m.Size {
		return fmt.Errorf("%s is %d bytes, the manifest says %d", filepath.Base(path), fi.Size(), m.Size)
	}
	_, sum, err := hashFile(ctx, path)
	if err != nil {
		return err
	}
	if sum != m.SHA256 {
		return fmt.Errorf("%s: SHA-256 %s does not match the manifest's %s", filepath.Base(path), sum, m.SHA256)
	}
	return nil
}
