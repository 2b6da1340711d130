package postgres

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// plainFor is how long a server that refused TLS to an sslmode=prefer
// session is dialled without trying TLS first.
const plainFor = time.Minute

// plainServers maps "host:port" to when the server last refused TLS to a
// prefer session (time.Time).
var plainServers sync.Map

// SkipRefusedTLS spares sslmode=prefer (libpq's and pgx's default) a TLS
// attempt the server refused a moment ago. pgx implements prefer as two
// connections, TLS then plain, so against a server without TLS every
// session cost two TCP connections and two server processes: a fifth of a
// fleet's no-change cycle. What the session ends up as is what prefer
// gives anyway (plain); the TLS attempt is made again once plainFor has
// passed, so a server that turns TLS on is used with it.
// Every session dbops opens goes through it (plan, apply, lock sessions).
func SkipRefusedTLS(cfg *pgx.ConnConfig) {
	if cfg.TLSConfig == nil || len(cfg.Fallbacks) != 1 {
		return // not prefer against one host
	}
	fb := cfg.Fallbacks[0]
	if fb.TLSConfig != nil || fb.Host != cfg.Host || fb.Port != cfg.Port {
		return
	}
	key := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	if at, ok := plainServers.Load(key); ok && time.Since(at.(time.Time)) < plainFor {
		cfg.TLSConfig, cfg.Fallbacks = nil, nil
		return
	}
	after := cfg.AfterConnect
	cfg.AfterConnect = func(ctx context.Context, pc *pgconn.PgConn) error {
		// Only a bare TCP connection counts as refused TLS: a TLS one, or
		// anything not known to be plain, keeps the TLS attempt.
		if _, plain := pc.Conn().(*net.TCPConn); plain {
			plainServers.Store(key, time.Now())
		} else {
			plainServers.Delete(key)
		}
		if after != nil {
			return after(ctx, pc)
		}
		return nil
	}
}
