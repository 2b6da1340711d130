package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// DrillReport is the outcome of a restore drill.
type DrillReport struct {
	Job       string    `json:"job"`              // stack/job
	Backup    string    `json:"backup,omitempty"` // the backup's file name
	StartedAt time.Time `json:"startedAt"`
	// RecoveryTime is download + restore + checks, in seconds: how long
	// getting this backup back would take.
	RecoveryTime float64 `json:"recoveryTimeSeconds"`
	OK           bool    `json:"ok"`
	Detail       string  `json:"detail,omitempty"`
	Error        string  `json:"error,omitempty"`
}

// Drill restores the job's newest counted backup into a scratch database
// on the job's server (Postgres: as verify: restore does, then row counts
// against the manifest and the drill's SQL checks) or into a throwaway
// redis-server (Redis: key count against the RDB walk), times it and
// throws the copy away. The backup's bytes are checked against the
// manifest on the way. The error, when not nil, is also in the report.
func Drill(ctx context.Context, job Job, opts Options) (DrillReport, error) {
	rep := DrillReport{Job: job.Key(), StartedAt: opts.now().UTC()}
	fail := func(err error) (DrillReport, error) {
		err = fmt.Errorf("restore drill %s: %w", job.Key(), err)
		rep.Error = err.Error()
		rep.RecoveryTime = opts.now().Sub(rep.StartedAt).Seconds()
		return rep, err
	}
	bs, err := ListChecked(ctx, job.Destination, job)
	if err != nil {
		return fail(err)
	}
	b, ok := Newest(bs)
	if !ok {
		return fail(errors.New("no counted backup to restore"))
	}
	m := b.Manifest
	rep.Backup = m.File
	start := time.Now()
	rc, err := b.open(ctx)
	if err != nil {
		return fail(err)
	}
	defer rc.Close()
	cr := newChecked(ctxReader{ctx, rc})
	plain, err := plaintext(cr, m, opts)
	if err != nil {
		return fail(err)
	}
	switch m.Source {
	case SourcePostgres:
		var checks []string
		if job.Drill != nil {
			checks = job.Drill.Checks
		}
		rep.Detail, err = restoreScratch(ctx, "", plain, m, job, opts, checks, false)
	case SourceRedis:
		rep.Detail, err = redisDrill(ctx, plain, m, opts)
	default:
		err = fmt.Errorf("unknown source %q", m.Source)
	}
	if err == nil {
		err = cr.finish(m) // pg_restore stops at the archive's end: the rest is hashed too
	}
	if err != nil {
		return fail(err)
	}
	rep.RecoveryTime = time.Since(start).Seconds()
	rep.OK = true
	return rep, nil
}

// redisDrill loads the RDB into a redis-server of its own (on a free
// loopback port, in a private temporary folder, no persistence) and
// compares its key count with the keys the RDB walk read.
func redisDrill(ctx context.Context, plain io.Reader, m Manifest, opts Options) (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errors.New("a Redis drill needs redis-server on PATH to load the backup into")
	}
	dir, err := os.MkdirTemp("", "dbops-drill-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	f, err := os.OpenFile(filepath.Join(dir, "dump.rdb"), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	// Walked while it is written: one pass over the download.
	info, err := checkRDBStream(io.TeeReader(ctxReader{ctx, plain}, f), m.RDBChecksum == "yes")
	if cerr := f.Close(); err == nil && cerr != nil {
		return "", cerr
	}
	if err != nil {
		return info.Summary(), err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.CommandContext(ctx, bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no", "--protected-mode", "yes")
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() { cmd.Process.Kill(); <-exited }()
	c := goredis.NewClient(&goredis.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), MaxRetries: -1, PoolSize: 1,
		DialTimeout: opts.connectTimeout()})
	defer c.Close()
	// PING answers LOADING until the dataset is in memory.
	gone := false
	err = waitFor(ctx, 10*time.Minute, func() bool {
		select {
		case <-exited:
			gone = true
			return true
		default:
		}
		return c.Ping(ctx).Err() == nil
	})
	if err != nil || gone {
		return "", fmt.Errorf("the throwaway redis-server did not load the backup (exited: %v): %v", gone, err)
	}
	n, err := keyCount(ctx, c)
	if err != nil {
		return "", err
	}
	// Keys whose TTL passed since the backup are dropped when loading.
	if n > info.Keys || (n == 0 && info.Keys > 0) {
		return "", fmt.Errorf("redis-server loaded %d keys, the RDB walk read %d", n, info.Keys)
	}
	return fmt.Sprintf("loaded into a throwaway redis-server: %d keys of %d in the RDB (expired keys are not loaded)", n, info.Keys), nil
}
