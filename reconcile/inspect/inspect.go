// Package inspect observes a stack's servers for people (dbops inspect):
// the runbook's admin queries and Redis monitoring commands, read-only.
package inspect

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/reconcile/redis"
	"github.com/amanat/dbops/spec"
)

// FormatVersion identifies the JSON form of a Report (schemas/inspect.schema.json).
const FormatVersion = "dbops.inspect/v1"

// Report is what inspect observed of one stack.
type Report struct {
	FormatVersion string    `json:"formatVersion"`
	Stack         string    `json:"stack"`
	At            time.Time `json:"at"`
	Postgres      *Postgres `json:"postgres,omitempty"`
	Redis         *Redis    `json:"redis,omitempty"`
}

// Options tune inspect.
type Options struct {
	ConnectTimeout time.Duration
	// Timeout bounds each server's observation; 30 s when zero.
	Timeout time.Duration
}

func (o Options) timeout() time.Duration {
	if o.Timeout <= 0 {
		return 30 * time.Second
	}
	return o.Timeout
}

// Stack observes the stack's servers. A server that fails is reported in
// its section's Error; the other is still observed.
func Stack(ctx context.Context, st *spec.Stack, o Options) *Report {
	r := &Report{FormatVersion: FormatVersion, Stack: st.Metadata.Name, At: time.Now().UTC()}
	if pg := st.Spec.Postgres; pg != nil {
		r.Postgres = &Postgres{Server: postgres.Server(pg.URL)}
		if err := observePostgres(ctx, pg, o, r.Postgres); err != nil {
			r.Postgres.Error = fmt.Sprintf("postgres %s: %s", r.Postgres.Server, spec.RedactText(spec.Scrub(err.Error(), spec.Password(pg.URL))))
		}
	}
	if rs := st.Spec.Redis; rs != nil {
		r.Redis = &Redis{Server: redis.Server(rs.URL)}
		if err := observeRedis(ctx, rs, o, r.Redis); err != nil {
			r.Redis.Error = fmt.Sprintf("redis %s: %s", r.Redis.Server, spec.RedactText(spec.Scrub(err.Error(), spec.Password(rs.URL))))
		}
	}
	return r
}

// Failed reports whether a server could not be observed.
func (r *Report) Failed() bool {
	return (r.Postgres != nil && r.Postgres.Error != "") || (r.Redis != nil && r.Redis.Error != "")
}

func observePostgres(ctx context.Context, pg *spec.Postgres, o Options, out *Postgres) error {
	db, err := postgres.Open(pg.URL, o.ConnectTimeout, true)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, o.timeout())
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("cannot connect: %w", err)
	}
	return readPostgres(ctx, db, pg.Migrations, out)
}

func observeRedis(ctx context.Context, rs *spec.Redis, o Options, out *Redis) error {
	c, err := redis.Open(rs.URL, o.ConnectTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, o.timeout())
	defer cancel()
	return readRedis(ctx, c, out)
}

// migrationLevel reads the version table through the stack's engine, as
// plan does.
func migrationLevel(ctx context.Context, db *sql.DB, m *spec.Migrations) (*Migrations, error) {
	eng := postgres.EngineFor(m)
	live, err := eng.Observe(ctx, db)
	if err != nil && !errors.Is(err, postgres.ErrNoBaseline) {
		return nil, err
	}
	table := m.Table
	if m.Format == spec.FormatDrizzle {
		table = m.Schema + "." + m.Table
	}
	return &Migrations{Format: m.Format, Table: table, TableExists: live.TableExists,
		Version: live.Version(), Level: eng.Name(live.Version()), Applied: len(live.Applied)}, nil
}
