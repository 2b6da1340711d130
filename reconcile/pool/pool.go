// Package pool keeps the plan connections of `dbops run` open between
// cycles, so stacks sharing a server neither reconnect every cycle nor hold
// unbounded idle sessions.
//
// One handle is kept per PostgreSQL database and per Redis URL (a PostgreSQL
// session is bound to one database; a Redis connection serves every stack
// on that server and logical database). Handles are grouped by server
// address and credentials, and each group holds at most MaxPerServer of
// them: past that, a handle is used for one stack cycle and closed, as
// without a pool, rather than evicting one that a later stack will want
// (under the loop's round-robin order an LRU eviction would never hit).
// Handles unused for Idle are closed, with their sessions.
//
// Only the read-only plan sessions come from here. The apply session and
// the lock session stay separate and dedicated: they are opened per apply,
// which is rare, and must not share state with the plan.
package pool

import (
	"database/sql"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/reconcile/redis"
	"github.com/amanat/dbops/spec"
)

// Options bound a Pool. Zero values get the defaults in brackets.
type Options struct {
	// Idle closes a handle (and its sessions) unused for this long [5m].
	// Make it longer than the loop's interval, or every cycle reconnects.
	Idle time.Duration
	// MaxPerServer bounds the handles kept per server address and
	// credentials [16]. A PostgreSQL handle holds at most one idle session
	// (two while a plan runs), a Redis handle at most RedisConns.
	MaxPerServer int
	// RedisConns bounds the connections of one Redis handle [2].
	RedisConns int
}

// Pool hands out shared, read-only plan handles. Its methods are safe for
// concurrent use.
type Pool struct {
	o       Options
	mu      sync.Mutex
	entries map[string]*entry
	count   map[string]int // kept entries per server group
	reaper  *time.Timer
	closed  bool
}

type entry struct {
	key, group string
	db         *sql.DB
	rc         *goredis.Client
	refs       int
	kept       bool // counted in its group; otherwise closed on release
	lastUsed   time.Time
}

// New returns an empty pool; nothing is dialled until a handle is used.
func New(o Options) *Pool {
	if o.Idle <= 0 {
		o.Idle = 5 * time.Minute
	}
	if o.MaxPerServer <= 0 {
		o.MaxPerServer = 16
	}
	if o.RedisConns <= 0 {
		o.RedisConns = 2
	}
	return &Pool{o: o, entries: map[string]*entry{}, count: map[string]int{}}
}

// Options returns the pool's settings, defaults filled in.
func (p *Pool) Options() Options { return p.o }

// Release gives a handle back.
type Release func()

// Postgres returns a read-only handle on the database at rawURL: every
// session has default_transaction_read_only, so the server itself refuses
// writes. The caller must not Close it; it calls release when done.
func (p *Pool) Postgres(rawURL string, connectTimeout time.Duration) (*sql.DB, Release, error) {
	key := "postgres\x00" + connectTimeout.String() + "\x00" + rawURL
	e, rel, err := p.get(key, func() string { return pgGroup(rawURL) }, func(e *entry) error {
		db, err := postgres.Open(rawURL, connectTimeout, true)
		if err != nil {
			return err
		}
		db.SetMaxOpenConns(2)
		db.SetMaxIdleConns(1)
		db.SetConnMaxIdleTime(p.o.Idle)
		e.db = db
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return e.db, rel, nil
}

// Redis returns a client for rawURL shared by every stack that names the
// same URL. The caller must not Close it; it calls release when done.
func (p *Pool) Redis(rawURL string, connectTimeout time.Duration) (*goredis.Client, Release, error) {
	key := "redis\x00" + connectTimeout.String() + "\x00" + rawURL
	e, rel, err := p.get(key, func() string { return redisGroup(rawURL) }, func(e *entry) error {
		c, err := redis.OpenPooled(rawURL, connectTimeout, p.o.RedisConns, p.o.Idle)
		if err != nil {
			return err
		}
		e.rc = c
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return e.rc, rel, nil
}

// get returns the entry for key, opening it when there is none. group is
// only computed then: parsing a URL on every plan was a tenth of a no-change
// cycle's dbops CPU with 500 kept handles.
func (p *Pool) get(key string, group func() string, open func(*entry) error) (*entry, Release, error) {
	p.mu.Lock()
	e := p.entries[key]
	if e == nil || p.closed {
		g := group()
		e = &entry{key: key, group: g}
		if err := open(e); err != nil {
			p.mu.Unlock()
			return nil, nil, err
		}
		if !p.closed && p.count[g] < p.o.MaxPerServer {
			e.kept = true
			p.count[g]++
			p.entries[key] = e
			p.schedule()
		}
	}
	e.refs++
	p.mu.Unlock()
	var once sync.Once
	return e, func() { once.Do(func() { p.release(e) }) }, nil
}

func (p *Pool) release(e *entry) {
	p.mu.Lock()
	e.refs--
	e.lastUsed = time.Now()
	drop := e.refs == 0 && (!e.kept || p.closed)
	p.mu.Unlock()
	if drop {
		e.close()
	}
}

func (e *entry) close() {
	if e.db != nil {
		e.db.Close()
	}
	if e.rc != nil {
		e.rc.Close()
	}
}

// schedule starts the reaper if it is not running. Called with p.mu held.
func (p *Pool) schedule() {
	if p.reaper == nil && !p.closed {
		p.reaper = time.AfterFunc(max(p.o.Idle/2, 50*time.Millisecond), p.reap)
	}
}

// reap closes the handles unused for Idle; it stops once the pool is empty.
func (p *Pool) reap() {
	p.mu.Lock()
	p.reaper = nil
	var idle []*entry
	now := time.Now()
	for k, e := range p.entries {
		if e.refs == 0 && now.Sub(e.lastUsed) >= p.o.Idle {
			delete(p.entries, k)
			p.count[e.group]--
			idle = append(idle, e)
		}
	}
	if len(p.entries) > 0 {
		p.schedule()
	}
	p.mu.Unlock()
	for _, e := range idle {
		e.close()
	}
}

// Close closes every idle handle; handles in use are closed when released.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	if p.reaper != nil {
		p.reaper.Stop()
		p.reaper = nil
	}
	var idle []*entry
	for k, e := range p.entries {
		delete(p.entries, k)
		p.count[e.group]--
		if e.refs == 0 {
			idle = append(idle, e)
		}
	}
	p.mu.Unlock()
	for _, e := range idle {
		e.close()
	}
}

// Held counts the handles kept, for tests and the bench.
func (p *Pool) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries)
}

// pgGroup is a PostgreSQL URL's server address and credentials: the
// handles of its databases share one bound.
func pgGroup(rawURL string) string {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return "postgres\x00" + rawURL // Open reports the error
	}
	return "postgres\x00" + net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))) + "\x00" + cfg.User + "\x00" + cfg.Password
}

// redisGroup is a Redis URL's address and credentials.
func redisGroup(rawURL string) string {
	opt, err := spec.ParseRedis(rawURL)
	if err != nil {
		return "redis\x00" + rawURL // OpenPooled reports the error
	}
	return "redis\x00" + opt.Network + "\x00" + opt.Addr + "\x00" + opt.Username + "\x00" + opt.Password
}
