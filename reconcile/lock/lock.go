// Package lock keeps two dbops processes from applying to the same stack at
// the same time.
package lock

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/spec"
)

// ErrHeld means another holder has the lock.
var ErrHeld = errors.New("another dbops process holds the stack lock")

// ErrOutOfMemory means Redis refused to store the lock key (maxmemory
// reached under noeviction).
var ErrOutOfMemory = errors.New("redis is out of memory and refused the lock key")

// Class is the first key of dbops' two-key advisory locks, "dbop" in ASCII.
// Two-key advisory locks never collide with goose's one-key migration lock.
const Class int32 = 0x64626f70

// Key is the second advisory lock key of a stack.
func Key(stack string) int32 { return int32(crc32.ChecksumIEEE([]byte(stack))) }

// Lock is held while applying to one stack. Release is safe to call twice.
type Lock interface {
	Release(ctx context.Context) error
}

// Postgres takes the stack's session-level advisory lock on a dedicated
// connection; closing that connection (or the process exiting) releases it.
// It does not wait: when another session holds the lock it returns ErrHeld.
func Postgres(ctx context.Context, rawURL, stack string, connectTimeout time.Duration) (Lock, error) {
	conn, err := connect(ctx, rawURL, connectTimeout, "dbops-lock:"+stack)
	if err != nil {
		return nil, fmt.Errorf("stack lock: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", Class, Key(stack)).Scan(&ok); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("stack lock: %w", err)
	}
	if !ok {
		conn.Close(ctx)
		return nil, ErrHeld
	}
	return &pgLock{conn: conn, stack: stack}, nil
}

type pgLock struct {
	conn  *pgx.Conn
	stack string
}

func (l *pgLock) Release(ctx context.Context) error {
	if l.conn == nil {
		return nil
	}
	// Closing the session releases its advisory locks even if the unlock
	// query cannot be sent.
	_, err := l.conn.Exec(ctx, "SELECT pg_advisory_unlock($1, $2)", Class, Key(l.stack))
	l.conn.Close(context.WithoutCancel(ctx))
	l.conn = nil
	return err
}

// releaseScript deletes the key only if this holder still owns it.
var releaseScript = goredis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end`)

// Redis takes a lock keyed dbops:lock:<stack> in the stack's Redis, for
// stacks without Postgres. It expires after ttl, so a crashed holder never
// blocks the stack for longer; an apply to Redis is one CONFIG SET, far
// shorter than any sensible ttl.
func Redis(ctx context.Context, c *goredis.Client, stack, holder string, ttl time.Duration) (Lock, error) {
	key := "dbops:lock:" + stack
	ok, err := c.SetNX(ctx, key, holder, ttl).Result()
	if err != nil && strings.HasPrefix(err.Error(), "OOM ") {
		return nil, ErrOutOfMemory
	}
	if err != nil {
		return nil, fmt.Errorf("stack lock: %w", err)
	}
	if !ok {
		return nil, ErrHeld
	}
	return &redisLock{c: c, key: key, holder: holder}, nil
}

type redisLock struct {
	c           *goredis.Client
	key, holder string
	done        bool
}

func (l *redisLock) Release(ctx context.Context) error {
	if l.done {
		return nil
	}
	l.done = true
	return releaseScript.Run(context.WithoutCancel(ctx), l.c, []string{l.key}, l.holder).Err()
}

// PostgresHolder describes the session holding the stack's advisory lock
// (its application_name, client address and since when), or "" when none
// does: for a person deciding whether to wait.
func PostgresHolder(ctx context.Context, rawURL, stack string, connectTimeout time.Duration) (string, error) {
	conn, err := connect(ctx, rawURL, connectTimeout, "dbops")
	if err != nil {
		return "", fmt.Errorf("stack lock: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var app, addr string
	var pid int
	var since time.Time
	err = conn.QueryRow(ctx, `SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local socket'), a.backend_start
		FROM pg_locks l JOIN pg_stat_activity a USING (pid)
		WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.objsubid = 2 LIMIT 1`,
		int64(Class), int64(uint32(Key(stack)))).Scan(&pid, &app, &addr, &since)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("stack lock: %w", err)
	}
	return fmt.Sprintf("session %d (%s) from %s, connected since %s", pid, app, addr, since.UTC().Format(time.RFC3339)), nil
}

// connect opens a session of its own on rawURL named app, sparing
// sslmode=prefer a TLS attempt the server just refused as every dbops
// session does. Its error is scrubbed of the password.
func connect(ctx context.Context, rawURL string, connectTimeout time.Duration, app string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("not a valid connection string %s", spec.Hidden)
	}
	cfg.ConnectTimeout = connectTimeout
	cfg.RuntimeParams["application_name"] = app
	postgres.SkipRefusedTLS(cfg)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, errors.New(spec.Scrub(err.Error(), cfg.Password))
	}
	return conn, nil
}

// RedisHolder is the holder named in the stack's Redis lock key, or "".
func RedisHolder(ctx context.Context, c *goredis.Client, stack string) (string, error) {
	h, err := c.Get(ctx, "dbops:lock:"+stack).Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	return h, err
}

// IdleSessions describes the dbops sessions (application_name dbops) on the
// database that have been idle at least idleFor, other than the caller's:
// the pooled plan sessions a `dbops run` keeps between its cycles (a plan
// or apply from a laptop does not sit idle). "" when there are none. It is
// how apply sees a loop that reconciles the stack without holding its lock.
func IdleSessions(ctx context.Context, rawURL string, connectTimeout, idleFor time.Duration) (string, error) {
	conn, err := connect(ctx, rawURL, connectTimeout, "dbops-apply")
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	var addrs string
	var since *time.Time
	err = conn.QueryRow(ctx, `SELECT count(*), coalesce(string_agg(DISTINCT coalesce(host(client_addr), 'local socket'), ', '), ''), min(backend_start)
		FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'dbops' AND state = 'idle'
		AND pid <> pg_backend_pid() AND state_change < now() - make_interval(secs => $1)`, idleFor.Seconds()).Scan(&n, &addrs, &since)
	if err != nil || n == 0 {
		return "", err
	}
	return fmt.Sprintf("%d idle dbops session(s) from %s, connected since %s", n, addrs, since.UTC().Format(time.RFC3339)), nil
}
