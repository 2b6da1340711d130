package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// RedisRestoreProcedure is the documented manual restore of a Redis
// backup. Redis loads the AOF instead of dump.rdb when appendonly is yes,
// and with the AOF folder moved aside it starts empty (and its next
// shutdown writes that empty dataset over dump.rdb): so it is started
// with AOF off, and AOF is turned back on from memory afterwards.
// TestRedisRestoreProcedure follows these steps on real servers.
const RedisRestoreProcedure = `Redis backups are restored by hand:
  1. note the server's settings: CONFIG GET dir, CONFIG GET dbfilename, CONFIG GET appendonly,
     CONFIG GET appenddirname;
  2. stop Redis without saving (SHUTDOWN NOSAVE, or stop its service), so it cannot overwrite the file;
  3. copy the .rdb file over <dir>/<dbfilename>, owned by the redis user; if appendonly is yes,
     move the <dir>/<appenddirname> folder aside (with AOF on, Redis ignores dump.rdb);
  4. start Redis with AOF off, whatever its config says: add --appendonly no to its command line
     (e.g. redis-server /etc/redis/redis.conf --appendonly no), so it loads dump.rdb;
  5. check INFO keyspace: the keys should number as above (less those that expired since);
  6. if appendonly was yes: CONFIG SET appendonly yes (Redis writes a new AOF from memory; wait until
     INFO persistence shows aof_rewrite_in_progress:0 and aof_last_bgrewrite_status:ok), then
     CONFIG REWRITE so the config file keeps appendonly yes; later starts need no extra argument.`

// Report says what Restore did.
type Report struct {
	Backup       string           `json:"backup"` // data file name
	Target       string           `json:"target"` // host:port/db
	Clean        bool             `json:"clean"`
	TablesBefore int              `json:"tablesBefore"`
	Tables       int              `json:"tables"` // user tables after the restore
	Rows         int64            `json:"rows"`
	RowCounts    map[string]int64 `json:"rowCounts,omitempty"`
	// Mismatches lists tables whose counts differ from the manifest's
	// (empty when they match or the manifest has none).
	Mismatches []string  `json:"mismatches,omitempty"`
	Command    string    `json:"command"` // pg_restore, without credentials
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
}

// String summarises the report in a few lines.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "restored %s into %s in %s\n", r.Backup, r.Target, r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond))
	if r.Clean {
		fmt.Fprintf(&b, "  --clean: objects of the backup were dropped first (%d tables before; other objects left alone)\n", r.TablesBefore)
	}
	fmt.Fprintf(&b, "  %d tables, %d rows\n  command: %s\n", r.Tables, r.Rows, r.Command)
	for _, m := range r.Mismatches {
		fmt.Fprintf(&b, "  row count differs from the backup's manifest: %s\n", m)
	}
	return b.String()
}

// ErrNotEmpty is wrapped by Restore's refusal to restore over tables.
var ErrNotEmpty = errors.New("target database has tables")

// Restore restores a Postgres backup into the database at toURL with
// pg_restore, in one transaction (all or nothing), without owners and
// privileges (objects belong to the connecting role). It first checks the
// file against its manifest. A database that has tables is refused unless
// clean, which drops the backup's objects first (--clean --if-exists).
// Redis backups are restored by RestoreRedis or by hand (RedisRestoreProcedure).
func Restore(ctx context.Context, m Manifest, file string, toURL string, clean bool, opts Options) (Report, error) {
	return restore(ctx, m, filepath.Base(file), func(ctx context.Context) error { return checkFile(ctx, file, m) },
		file, nil, toURL, clean, opts)
}

// RestoreBackup restores a listed backup, from a folder or an s3://
// destination, encrypted or not, with Restore's rules. An object or an
// encrypted file is first read through once to check its size and
// SHA-256, then streamed (decrypted on the way) into pg_restore.
func RestoreBackup(ctx context.Context, b Backup, toURL string, clean bool, opts Options) (Report, error) {
	if b.bucket == nil && b.Manifest.Encryption == nil {
		return Restore(ctx, b.Manifest, b.File, toURL, clean, opts)
	}
	m := b.Manifest
	check := func(ctx context.Context) error {
		if m.Encryption != nil {
			if _, err := opts.identities(m); err != nil {
				return err
			}
		}
		rc, err := b.open(ctx)
		if err != nil {
			return err
		}
		defer rc.Close()
		return newChecked(ctxReader{ctx, rc}).finish(m)
	}
	return restore(ctx, m, m.File, check, "", b.open, toURL, clean, opts)
}

// restore restores file, or the stream open returns, after check passed.
func restore(ctx context.Context, m Manifest, name string, check func(context.Context) error, file string, open opener, toURL string, clean bool, opts Options) (Report, error) {
	r := Report{Backup: name, Clean: clean, StartedAt: opts.now().UTC()}
	if m.Source != SourcePostgres {
		return r, fmt.Errorf("%s is a %s backup: restore it with RestoreRedis (dbops restore --redis-dir) or by hand.\n%s", r.Backup, m.Source, RedisRestoreProcedure)
	}
	t, err := parsePG(toURL)
	if err != nil {
		return r, err
	}
	r.Target = t.server
	if !m.Verification.OK && m.Verification.Method != VerifyNone {
		return r, fmt.Errorf("%s did not pass verification (%s): refusing to restore it", r.Backup, m.Verification.Error)
	}
	if err := check(ctx); err != nil {
		return r, fmt.Errorf("refusing to restore: %w", err)
	}
	conn, err := t.connect(ctx, opts.connectTimeout(), false)
	if err != nil {
		return r, err
	}
	defer conn.Close(context.Background())
	before, err := listTables(ctx, conn)
	if err != nil {
		return r, fmt.Errorf("postgres %s: %s", t.server, t.scrub(err.Error()))
	}
	r.TablesBefore = len(before)
	if len(before) > 0 && !clean {
		names := make([]string, 0, 3)
		for _, id := range before[:min(3, len(before))] {
			names = append(names, id[0]+"."+id[1])
		}
		return r, fmt.Errorf("refusing to restore into %s: %w (%d, e.g. %s); restore into an empty database or pass --clean to drop and replace the backup's objects",
			t.server, ErrNotEmpty, len(before), strings.Join(names, ", "))
	}
	args := []string{"--no-password", "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges"}
	if clean {
		args = append(args, "--clean", "--if-exists")
	}
	args = append(args, "--dbname="+t.conn)
	var in io.Reader
	if open != nil {
		rc, err := open(ctx)
		if err != nil {
			return r, err
		}
		defer rc.Close()
		if in, err = plaintext(ctxReader{ctx, rc}, m, opts); err != nil {
			return r, err
		}
		r.Command = strings.Join(append([]string{opts.pgRestore()}, args...), " ") + " < " + name
	} else {
		args = append(args, file)
		r.Command = strings.Join(append([]string{opts.pgRestore()}, args...), " ") // the URL has no password
	}
	if err := runToolIn(ctx, t, opts.pgRestore(), args, in, nil); err != nil {
		return r, fmt.Errorf("restore %s into %s (nothing was changed: one transaction): %w", r.Backup, t.server, err)
	}
	if r.RowCounts, err = rowCounts(ctx, conn); err != nil {
		return r, fmt.Errorf("postgres %s: restored, but counting rows failed: %s", t.server, t.scrub(err.Error()))
	}
	r.Tables = len(r.RowCounts)
	for _, n := range r.RowCounts {
		r.Rows += n
	}
	if m.RowCounts != nil {
		for _, d := range compareCounts(m.RowCounts, r.RowCounts) {
			if !strings.Contains(d, "is not in the source") { // tables the backup does not hold are left alone
				r.Mismatches = append(r.Mismatches, d)
			}
		}
	}
	r.FinishedAt = opts.now().UTC()
	return r, nil
}
