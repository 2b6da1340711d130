package backup

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/amanat/dbops/spec"
)

// redisIOTimeout bounds each read while waiting for the RDB; the server
// sends a newline every second while it prepares the snapshot.
const redisIOTimeout = time.Minute

type redisTarget struct {
	opt      *goredis.Options
	password string
}

func parseRedis(raw string) (redisTarget, error) {
	if raw == "" {
		return redisTarget{}, errors.New("no redis URL")
	}
	opt, err := spec.ParseRedis(raw)
	if err != nil {
		return redisTarget{}, fmt.Errorf("redis: %w", err)
	}
	return redisTarget{opt: opt, password: opt.Password}, nil
}

func (t redisTarget) errorf(format string, args ...any) error {
	return errors.New("redis " + t.opt.Addr + ": " + spec.Scrub(fmt.Sprintf(format, args...), t.password))
}

// redisInfo reads redis_version and the rdbchecksum setting ("" when
// CONFIG is not allowed).
func redisInfo(ctx context.Context, t redisTarget, timeout time.Duration) (version, rdbChecksum string, err error) {
	opt := *t.opt
	opt.DialTimeout, opt.MaxRetries, opt.PoolSize = timeout, 0, 1
	c := goredis.NewClient(&opt)
	defer c.Close()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return "", "", t.errorf("INFO server: %v", err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			version = v
		}
	}
	if cfg, err := c.ConfigGet(ctx, "rdbchecksum").Result(); err == nil {
		rdbChecksum = cfg["rdbchecksum"]
	}
	return version, rdbChecksum, nil
}

// fetchRDB asks the server for a snapshot as a replica does (as
// `redis-cli --rdb`): AUTH, REPLCONF rdb-only 1 where supported, SYNC, then
// the RDB as one bulk string, streamed to w.
func fetchRDB(ctx context.Context, t redisTarget, timeout time.Duration, w io.Writer) (int64, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", t.opt.Addr)
	if err != nil {
		return 0, t.errorf("connect: %v", err)
	}
	defer conn.Close()
	if t.opt.TLSConfig != nil {
		tc := tls.Client(conn, t.opt.TLSConfig)
		hctx, cancel := context.WithTimeout(ctx, timeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			return 0, t.errorf("TLS: %v", err)
		}
		conn = tc
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	rc := &deadlineConn{conn: conn, timeout: redisIOTimeout}
	br := bufio.NewReaderSize(rc, 1<<20)
	call := func(args ...string) (string, error) {
		if err := writeCommand(rc, args...); err != nil {
			return "", err
		}
		return readLine(br)
	}
	fail := func(err error) (int64, error) {
		if ctx.Err() != nil {
			return 0, t.errorf("%v", ctx.Err())
		}
		return 0, err
	}
	if t.opt.Password != "" {
		args := []string{"AUTH", t.opt.Password}
		if t.opt.Username != "" {
			args = []string{"AUTH", t.opt.Username, t.opt.Password}
		}
		reply, err := call(args...)
		if err != nil {
			return fail(t.errorf("AUTH: %v", err))
		}
		if !strings.HasPrefix(reply, "+") {
			return fail(t.errorf("AUTH: %s", reply))
		}
	}
	// Redis 7 sends only the RDB, no replication stream, after this; older
	// servers answer an error, which is fine.
	if _, err := call("REPLCONF", "rdb-only", "1"); err != nil {
		return fail(t.errorf("REPLCONF: %v", err))
	}
	if err := writeCommand(rc, "SYNC"); err != nil {
		return fail(t.errorf("SYNC: %v", err))
	}
	// Newlines are keep-alives sent while the server writes the snapshot.
	var header string
	for header == "" {
		line, err := readLine(br)
		if err != nil {
			return fail(t.errorf("SYNC: %v (the server log says why: is its dir writable?)", err))
		}
		header = line
	}
	switch {
	case strings.HasPrefix(header, "-"):
		return fail(t.errorf("SYNC: %s", header))
	case strings.HasPrefix(header, "$EOF:"):
		return fail(t.errorf("SYNC: the server sent a diskless stream, which this client does not request"))
	case !strings.HasPrefix(header, "$"):
		return fail(t.errorf("SYNC: unexpected reply %q", header))
	}
	size, err := strconv.ParseInt(header[1:], 10, 64)
	if err != nil || size < 0 {
		return fail(t.errorf("SYNC: bad length in %q", header))
	}
	n, err := io.CopyBuffer(w, io.LimitReader(br, size), make([]byte, 1<<20))
	if err != nil {
		return fail(t.errorf("reading the RDB after %d of %d bytes: %v", n, size, err))
	}
	if n != size {
		return fail(t.errorf("the connection closed after %d of %d RDB bytes", n, size))
	}
	return n, nil
}

func writeCommand(w io.Writer, args ...string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// readLine reads one protocol line without its line end; a bare "\n"
// (keep-alive) gives "".
func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			return "", errors.New("connection closed by the server")
		}
		return "", err
	}
	if len(line) > 1<<10 {
		line = line[:1<<10]
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// deadlineConn renews the connection's deadline before each read and write,
// so a stalled server fails the backup instead of hanging it.
type deadlineConn struct {
	conn    net.Conn
	timeout time.Duration
}

func (d *deadlineConn) Read(p []byte) (int, error) {
	d.conn.SetReadDeadline(time.Now().Add(d.timeout))
	return d.conn.Read(p)
}

func (d *deadlineConn) Write(p []byte) (int, error) {
	d.conn.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.conn.Write(p)
}

// dumpRedis fetches the job's RDB into tf and fills the manifest.
func dumpRedis(ctx context.Context, job Job, opts Options, tf io.Writer, m *Manifest) error {
	t, err := parseRedis(job.RedisURL)
	if err != nil {
		return err
	}
	m.Server = t.opt.Addr
	if m.ServerVersion, m.RDBChecksum, err = redisInfo(ctx, t, opts.connectTimeout()); err != nil {
		return err
	}
	_, err = fetchRDB(ctx, t, opts.connectTimeout(), tf)
	return err
}
