package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DirOptions configures a folder source.
type DirOptions struct {
	Dir      string        // the folder watched (recursively, incl. subfolders created later)
	Path     string        // subfolder with the stacks, "" for Dir itself
	CacheDir string        // where snapshots live
	Debounce time.Duration // default 200ms: a burst of events gives one Changed signal
}

// Dir is a Source following a local folder, watched for changes.
type Dir struct {
	dir, cache, path string
	debounce         time.Duration

	watcher *fsnotify.Watcher
	changed chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once

	mu   sync.Mutex
	last Revision // last revision returned by Fetch
	// lastHash is the source folder's hash when last was returned.
	lastHash string
}

var _ Source = (*Dir)(nil)

// DefaultDebounce is the quiet time after a burst of file events before
// Changed is signalled.
const DefaultDebounce = 200 * time.Millisecond

// NewDir starts watching the folder and returns the source.
func NewDir(opts DirOptions) (*Dir, error) {
	if opts.Dir == "" || opts.CacheDir == "" {
		return nil, errors.New("folder source: folder and cache dir are required")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("folder source %s: %w", opts.Dir, err)
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("folder source: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("folder source: %s is not a folder", opts.Dir)
	}
	p, err := subPath(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("folder source %s: %w", opts.Dir, err)
	}
	cache, err := filepath.Abs(opts.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("folder source %s: %w", opts.Dir, err)
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, fmt.Errorf("folder source %s: %w", opts.Dir, err)
	}
	removeTemps(cache)
	d := &Dir{
		dir: dir, cache: cache, path: p, debounce: opts.Debounce,
		changed: make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	if d.debounce <= 0 {
		d.debounce = DefaultDebounce
	}
	if d.watcher, err = fsnotify.NewWatcher(); err != nil {
		return nil, fmt.Errorf("folder source %s: watch: %w", opts.Dir, err)
	}
	if err := d.watchTree(dir); err != nil {
		d.watcher.Close()
		return nil, fmt.Errorf("folder source %s: watch: %w", opts.Dir, err)
	}
	d.wg.Add(1)
	go d.watch()
	return d, nil
}

// Changed is signalled, debounced, after files below the folder change.
func (d *Dir) Changed() <-chan struct{} { return d.changed }

// Close stops the watcher; snapshots stay in the cache dir.
func (d *Dir) Close() error {
	var err error
	d.once.Do(func() {
		close(d.done)
		err = d.watcher.Close()
		d.wg.Wait()
	})
	return err
}

// Release deletes snapshots other than those of the given revision IDs.
func (d *Dir) Release(keep ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	release(d.cache, keep)
}

// Fetch returns the folder's current revision, copying it into a new
// snapshot when its content changed.
func (d *Dir) Fetch(ctx context.Context) (Revision, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	where := "folder source " + d.dir
	keep := revisionFilter(d.dir, d.path)
	hash, err := hashFolder(ctx, d.dir, d.cache, keep)
	if err != nil {
		return Revision{}, fmt.Errorf("%s: %w", where, err)
	}
	if hash == d.lastHash && d.last.ID != "" {
		if _, err := os.Stat(d.last.Root); err == nil {
			return d.last, nil
		}
	}
	// The ID is the hash of the copy, so it names exactly the files in the
	// snapshot even when the folder changes while being copied.
	tmp, err := os.MkdirTemp(d.cache, tmpPrefix+"copy-")
	if err != nil {
		return Revision{}, fmt.Errorf("%s: %w", where, err)
	}
	defer os.RemoveAll(tmp)
	if err := copyFolder(ctx, d.dir, d.cache, tmp, keep); err != nil {
		return Revision{}, fmt.Errorf("%s: copy: %w", where, err)
	}
	id, err := hashFolder(ctx, tmp, "", nil)
	if err != nil {
		return Revision{}, fmt.Errorf("%s: %w", where, err)
	}
	root, err := materialise(d.cache, id, func(dst string) error {
		// materialise made dst; the copy takes its place.
		if err := os.Remove(dst); err != nil {
			return err
		}
		return os.Rename(tmp, dst)
	})
	if err != nil {
		return Revision{}, fmt.Errorf("%s: %w", where, err)
	}
	rev := Revision{ID: id, Root: root, Path: filepath.Join(root, d.path)}
	if fi, err := os.Stat(rev.Path); err != nil || !fi.IsDir() {
		return Revision{}, fmt.Errorf("%s: path %q is not a folder in revision %s", where, d.path, id)
	}
	d.last, d.lastHash = rev, hash
	return rev, nil
}

// watchTree adds root and every folder below it to the watcher, skipping
// dot-folders and the cache dir.
func (d *Dir) watchTree(root string) error {
	return filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p != root && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !e.IsDir() {
			return nil
		}
		if p != d.dir && skipDir(p, p, d.cache) {
			return filepath.SkipDir
		}
		if err := d.watcher.Add(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
}

// maxBurst bounds, in debounce periods, how long a steady stream of events
// can hold back the Changed signal.
const maxBurst = 10

// watch turns file events into debounced Changed signals, and watches
// folders created after the start.
func (d *Dir) watch() {
	defer d.wg.Done()
	var timer *time.Timer
	var fire <-chan time.Time
	var burst time.Time // first event since the last signal
	for {
		select {
		case <-d.done:
			if timer != nil {
				timer.Stop()
			}
			return
		case ev, ok := <-d.watcher.Events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
					_ = d.watchTree(ev.Name) // its files are in the next Fetch's hash anyway
				}
			}
		case _, ok := <-d.watcher.Errors:
			if !ok {
				return
			}
			// An overflow may have lost events: signal to be safe.
		case <-fire:
			timer, fire = nil, nil
			select {
			case d.changed <- struct{}{}:
			default:
			}
			continue
		}
		switch {
		case timer == nil:
			timer, burst = time.NewTimer(d.debounce), time.Now()
			fire = timer.C
		case time.Since(burst) < maxBurst*d.debounce:
			timer.Reset(d.debounce)
		}
	}
}
