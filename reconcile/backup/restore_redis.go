package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// RedisRestoreTarget is the server RestoreRedis restores into and how to
// stop and start it.
type RedisRestoreTarget struct {
	URL string // redis:// of the server (its password is never printed)
	Dir string // its data directory, as dbops sees it; must be CONFIG GET dir
	// Stop stops the server; nil sends SHUTDOWN NOSAVE. Either way
	// RestoreRedis then waits until the server no longer answers.
	Stop func(ctx context.Context) error
	// Start starts it again with its usual configuration.
	Start func(ctx context.Context) error
	// Timeout bounds each wait (stop, start and load, AOF rewrite); default 2 minutes.
	Timeout time.Duration
}

// RedisReport says what RestoreRedis did.
type RedisReport struct {
	Backup     string    `json:"backup"`
	Target     string    `json:"target"` // host:port
	KeysInFile int64     `json:"keysInFile"`
	Keys       int64     `json:"keys"` // in the restarted server
	AOF        bool      `json:"aof"`  // appendonly was yes, and is again
	MovedAside []string  `json:"movedAside,omitempty"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
}

func (r RedisReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "restored %s into %s in %s\n", r.Backup, r.Target, r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond))
	fmt.Fprintf(&b, "  %d keys loaded; the file holds %d", r.Keys, r.KeysInFile)
	if r.Keys < r.KeysInFile {
		b.WriteString(" (the others had expired)")
	}
	b.WriteString("\n")
	if r.AOF {
		b.WriteString("  appendonly yes again: the AOF was rewritten from the restored data and the config file kept\n")
	}
	for _, p := range r.MovedAside {
		fmt.Fprintf(&b, "  moved aside (delete when satisfied): %s\n", p)
	}
	return b.String()
}

// RestoreRedis performs RedisRestoreProcedure: it checks the file, reads
// the server's dir, dbfilename and appendonly; with AOF on it sets
// appendonly no in the config file (CONFIG SET + CONFIG REWRITE) so the
// server's next start loads the RDB; stops the server; puts the file in
// place of dump.rdb, moving the old one and the AOF folder aside; starts
// the server and waits until it has loaded; compares the key count; and
// turns AOF back on (CONFIG SET appendonly yes, which rewrites the AOF
// from memory, then CONFIG REWRITE). A server with AOF on but no config
// file is refused: only its start command could turn AOF off.
func RestoreRedis(ctx context.Context, m Manifest, file string, to RedisRestoreTarget, opts Options) (RedisReport, error) {
	rep := RedisReport{Backup: filepath.Base(file), StartedAt: opts.now().UTC()}
	if m.Source != SourceRedis {
		return rep, fmt.Errorf("%s is a %s backup, not a Redis one", rep.Backup, m.Source)
	}
	if to.Start == nil {
		return rep, errors.New("restoring into a Redis server needs the command that starts it")
	}
	timeout := to.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	if err := checkFile(ctx, file, m); err != nil {
		return rep, fmt.Errorf("refusing to restore: %w", err)
	}
	info, err := CheckRDB(file)
	if err != nil {
		return rep, fmt.Errorf("refusing to restore %s: %w", rep.Backup, err)
	}
	rep.KeysInFile = info.Keys
	t, err := parseRedis(to.URL)
	if err != nil {
		return rep, err
	}
	rep.Target = t.opt.Addr
	opt := *t.opt
	// One dial attempt per command: the waits below poll a stopped server.
	opt.DialTimeout, opt.MaxRetries, opt.DialerRetries, opt.PoolSize = opts.connectTimeout(), -1, 1, 1
	c := goredis.NewClient(&opt)
	defer c.Close()

	// 1. The settings.
	cfg := map[string]string{}
	for _, name := range []string{"dir", "dbfilename", "appendonly", "appenddirname"} {
		v, err := c.ConfigGet(ctx, name).Result()
		if err != nil {
			return rep, t.errorf("CONFIG GET %s: %v", name, err)
		}
		cfg[name] = v[name]
	}
	confFile, err := infoField(ctx, c, "server", "config_file")
	if err != nil {
		return rep, t.errorf("INFO server: %v", err)
	}
	if !sameDir(cfg["dir"], to.Dir) {
		return rep, t.errorf("its data directory is %s (CONFIG GET dir), not %s: give the folder the server uses, as this machine sees it", cfg["dir"], to.Dir)
	}
	rep.AOF = cfg["appendonly"] == "yes"
	if rep.AOF && confFile == "" {
		return rep, t.errorf("appendonly is yes and the server has no config file, so dbops cannot start it with AOF off; follow the manual procedure (dbops restore without --redis-dir)")
	}
	dump := filepath.Join(to.Dir, cfg["dbfilename"])
	stamp := rep.StartedAt.Format("20060102T150405Z")

	// Copy the file next to dump.rdb first: a full disk fails here, with
	// the server untouched.
	tmp := filepath.Join(to.Dir, ".dbops-restore-"+stamp+".rdb")
	if err := copyForRedis(file, tmp, to.Dir); err != nil {
		os.Remove(tmp)
		return rep, err
	}
	defer os.Remove(tmp) // gone after the rename; left only on failure

	// 2. With AOF on, the next start must not load the AOF.
	if rep.AOF {
		if err := c.ConfigSet(ctx, "appendonly", "no").Err(); err != nil {
			return rep, t.errorf("CONFIG SET appendonly no: %v", err)
		}
		if err := c.ConfigRewrite(ctx).Err(); err != nil {
			c.ConfigSet(ctx, "appendonly", "yes")
			return rep, t.errorf("CONFIG REWRITE: %v", err)
		}
	}
	// 3. Stop it, without saving.
	if to.Stop != nil {
		err = to.Stop(ctx)
	} else if err = c.ShutdownNoSave(ctx).Err(); err != nil && isClosed(err) {
		err = nil // the server closes the connection as it exits
	}
	if err != nil {
		if rep.AOF {
			return rep, t.errorf("stop: %v (appendonly is now no in its config file: CONFIG SET appendonly yes and CONFIG REWRITE to undo)", err)
		}
		return rep, t.errorf("stop: %v", err)
	}
	c.Close()
	if err := waitFor(ctx, timeout, func() bool { return ping(ctx, &opt) != nil }); err != nil {
		return rep, t.errorf("still answers after the stop: %v", err)
	}
	// 4. The file in place; the old dump and the AOF folder aside.
	if _, err := os.Stat(dump); err == nil {
		aside := dump + ".before-restore-" + stamp
		if err := os.Rename(dump, aside); err != nil {
			return rep, err
		}
		rep.MovedAside = append(rep.MovedAside, aside)
	}
	if rep.AOF {
		aofDir := filepath.Join(to.Dir, cfg["appenddirname"])
		if _, err := os.Stat(aofDir); err == nil {
			aside := aofDir + ".before-restore-" + stamp
			if err := os.Rename(aofDir, aside); err != nil {
				return rep, err
			}
			rep.MovedAside = append(rep.MovedAside, aside)
		}
	}
	if err := os.Rename(tmp, dump); err != nil {
		return rep, err
	}
	if err := syncDir(to.Dir); err != nil {
		return rep, err
	}
	// 5. Start it and wait until it has loaded the file.
	if err := to.Start(ctx); err != nil {
		return rep, t.errorf("start: %v", err)
	}
	c = goredis.NewClient(&opt)
	defer c.Close()
	if err := waitFor(ctx, timeout, func() bool {
		loading, err := infoField(ctx, c, "persistence", "loading")
		return err == nil && loading == "0"
	}); err != nil {
		return rep, t.errorf("did not come back after the start: %v", err)
	}
	if rep.Keys, err = keyCount(ctx, c); err != nil {
		return rep, t.errorf("INFO keyspace: %v", err)
	}
	if rep.Keys > rep.KeysInFile || rep.Keys == 0 && rep.KeysInFile > 0 {
		return rep, t.errorf("has %d keys after the restart, the file holds %d: it did not load the file (check its log)", rep.Keys, rep.KeysInFile)
	}
	// 6. AOF back on, rewritten from memory, and kept in the config file.
	if rep.AOF {
		if err := c.ConfigSet(ctx, "appendonly", "yes").Err(); err != nil {
			return rep, t.errorf("CONFIG SET appendonly yes: %v", err)
		}
		var last string
		if err := waitFor(ctx, timeout, func() bool {
			p, err := c.Info(ctx, "persistence").Result()
			last = p
			return err == nil && strings.Contains(p, "aof_rewrite_in_progress:0") && strings.Contains(p, "aof_rewrite_scheduled:0") && strings.Contains(p, "aof_enabled:1")
		}); err != nil {
			return rep, t.errorf("the AOF rewrite did not finish: %v", err)
		}
		if !strings.Contains(last, "aof_last_bgrewrite_status:ok") {
			return rep, t.errorf("the AOF rewrite failed (INFO persistence; see its log); appendonly stays no in its config file")
		}
		if err := c.ConfigRewrite(ctx).Err(); err != nil {
			return rep, t.errorf("CONFIG REWRITE: %v (appendonly is yes now, but no in the config file)", err)
		}
	}
	rep.FinishedAt = opts.now().UTC()
	return rep, nil
}

// copyForRedis copies the backup to path, fsynced, owned like dir (the
// server's user, when dbops runs as root).
func copyForRedis(from, path, dir string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644) // as Redis writes dump.rdb
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s into %s: %w", filepath.Base(from), dir, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return chownLike(path, dir)
}

func sameDir(a, b string) bool {
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	if err1 != nil || err2 != nil {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	return ra == rb
}

func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "closed")
}

func ping(ctx context.Context, opt *goredis.Options) error {
	c := goredis.NewClient(opt)
	defer c.Close()
	return c.Ping(ctx).Err()
}

// waitFor polls ok until it holds, for at most d.
func waitFor(ctx context.Context, d time.Duration, ok func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for !ok() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up after %s", d)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// infoField returns one field of an INFO section.
func infoField(ctx context.Context, c *goredis.Client, section, field string) (string, error) {
	info, err := c.Info(ctx, section).Result()
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v, nil
		}
	}
	return "", nil
}

// keyCount sums the keys of every database (INFO keyspace).
func keyCount(ctx context.Context, c *goredis.Client) (int64, error) {
	info, err := c.Info(ctx, "keyspace").Result()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, line := range strings.Split(info, "\n") {
		if _, rest, ok := strings.Cut(strings.TrimSpace(line), ":keys="); ok {
			k, _, _ := strings.Cut(rest, ",")
			v, err := strconv.ParseInt(k, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("INFO keyspace line %q", line)
			}
			n += v
		}
	}
	return n, nil
}

// RestoreRedisBackup is RestoreRedis for a listed backup, from a folder or
// an s3:// destination, encrypted or not: an object or an encrypted file
// is checked against its manifest while it is copied (decrypted) to a
// private temporary file, which RestoreRedis then puts in place.
func RestoreRedisBackup(ctx context.Context, b Backup, to RedisRestoreTarget, opts Options) (RedisReport, error) {
	if b.bucket == nil && b.Manifest.Encryption == nil {
		return RestoreRedis(ctx, b.Manifest, b.File, to, opts)
	}
	m := b.Manifest
	rc, err := b.open(ctx)
	if err != nil {
		return RedisReport{Backup: m.File}, err
	}
	defer rc.Close()
	cr := newChecked(ctxReader{ctx, rc})
	plain, err := plaintext(cr, m, opts)
	if err != nil {
		return RedisReport{Backup: m.File}, err
	}
	tmp, cleanup, err := spool(ctx, plain)
	if err != nil {
		return RedisReport{Backup: m.File}, err
	}
	defer cleanup()
	if err := cr.finish(m); err != nil {
		return RedisReport{Backup: m.File}, fmt.Errorf("refusing to restore: %w", err)
	}
	// The spooled plaintext is checked against itself from here on.
	size, sum, err := hashFile(ctx, tmp)
	if err != nil {
		return RedisReport{Backup: m.File}, err
	}
	local := m
	local.Size, local.SHA256, local.Encryption = size, sum, nil
	rep, err := RestoreRedis(ctx, local, tmp, to, opts)
	rep.Backup = m.File
	return rep, err
}

// CheckRedisBackup is CheckRDB for a listed backup, from a folder or an
// s3:// destination, encrypted or not.
func CheckRedisBackup(ctx context.Context, b Backup, opts Options) (RDBInfo, error) {
	if b.bucket == nil && b.Manifest.Encryption == nil {
		return CheckRDB(b.File)
	}
	rc, err := b.open(ctx)
	if err != nil {
		return RDBInfo{}, err
	}
	defer rc.Close()
	plain, err := plaintext(ctxReader{ctx, rc}, b.Manifest, opts)
	if err != nil {
		return RDBInfo{}, err
	}
	tmp, cleanup, err := spool(ctx, plain)
	if err != nil {
		return RDBInfo{}, err
	}
	defer cleanup()
	return CheckRDB(tmp)
}
