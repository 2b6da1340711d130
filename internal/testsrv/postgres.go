package testsrv

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresOptions configures StartPostgres.
type PostgresOptions struct {
	Password string // password of the superuser "postgres"; a random one when empty
	// MaxConnections is the server's max_connections; 200 when zero.
	MaxConnections int
	// Args are extra server arguments, e.g. "-c",
	// "shared_preload_libraries=pg_stat_statements".
	Args []string
}

// Postgres is a throwaway PostgreSQL cluster started by StartPostgres.
type Postgres struct {
	Host     string // 127.0.0.1
	Port     int
	User     string // "postgres"
	Password string
	BinDir   string
	DataDir  string

	maxConns int
	base     string  // temp dir: data dir, sockets, log
	as       *osUser // OS user the server runs as; nil for the current one

	args []string // PostgresOptions.Args

	mu      sync.Mutex
	proc    *proc
	stopped bool
	stopErr error
}

// StartPostgres initialises a new cluster in a temp dir and starts it on a
// free port of 127.0.0.1, with scram-sha-256 password auth over TCP.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Postgres, error) {
	bin, err := FindPostgresBin()
	if err != nil {
		return nil, err
	}
	as, err := postgresUser()
	if err != nil {
		return nil, err
	}
	base, err := makeDir("testsrv-pg-", as)
	if err != nil {
		return nil, err
	}
	p := &Postgres{
		Host:     "127.0.0.1",
		User:     "postgres",
		Password: opts.Password,
		BinDir:   bin,
		DataDir:  filepath.Join(base, "data"),
		base:     base,
		as:       as,
		maxConns: opts.MaxConnections,
		args:     opts.Args,
	}
	if p.maxConns <= 0 {
		p.maxConns = 200
	}
	if p.Password == "" {
		p.Password = rand.Text()
	}
	if err := p.initdb(ctx); err != nil {
		p.Stop()
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		err = p.start(ctx)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, errPortInUse) || attempt == startAttempts {
			p.Stop()
			return nil, err
		}
	}
}

func (p *Postgres) logPath() string { return filepath.Join(p.base, "postgres.log") }

func (p *Postgres) initdb(ctx context.Context) error {
	pwfile := filepath.Join(p.base, "pwfile")
	if err := os.WriteFile(pwfile, []byte(p.Password+"\n"), 0o600); err != nil {
		return fmt.Errorf("testsrv: %w", err)
	}
	defer os.Remove(pwfile)
	if err := chownTo(pwfile, p.as, 0o600); err != nil {
		return err
	}
	args := []string{
		"-D", p.DataDir, "-U", p.User,
		"--auth-local=trust", "--auth-host=scram-sha-256",
		"--pwfile=" + pwfile, "-E", "UTF8", "--locale=C", "--no-instructions",
	}
	return runProc(ctx, filepath.Join(p.BinDir, "initdb"), args, p.base, p.logPath(), p.as)
}

// start runs postgres on a new free port and waits until it accepts logins.
func (p *Postgres) start(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	return p.startOn(ctx, port)
}

// Restart stops the server (fast shutdown, as an operator's restart) and
// starts it again on the same port and data directory, so settings that
// need a restart (postmaster context) take effect.
func (p *Postgres) Restart(ctx context.Context) error {
	p.mu.Lock()
	pr, stopped := p.proc, p.stopped
	p.mu.Unlock()
	if stopped || pr == nil {
		return errors.New("testsrv: restart of a stopped server")
	}
	if err := pr.stop(os.Interrupt, time.Minute); err != nil {
		return fmt.Errorf("testsrv: restart: %w", err)
	}
	return p.startOn(ctx, p.Port)
}

// startOn runs postgres on port and waits until it accepts logins.
func (p *Postgres) startOn(ctx context.Context, port int) error {
	args := []string{
		"-D", p.DataDir, "-p", strconv.Itoa(port), "-k", p.base,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "synchronous_commit=off",
		"-c", "max_connections=" + strconv.Itoa(p.maxConns),
	}
	args = append(args, p.args...)
	pr, err := startProc(filepath.Join(p.BinDir, "postgres"), args, p.base, p.logPath(), p.as)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.Port, p.proc = port, pr
	p.mu.Unlock()
	if err := waitReady(ctx, pr, p.probe); err != nil {
		pr.stop(os.Interrupt, 10*time.Second)
		return startError("postgres", port, pr, err)
	}
	return nil
}

// probe logs in and checks that the server on our port is ours.
func (p *Postgres) probe(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var dir string
	if err := conn.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dir); err != nil {
		return err
	}
	if filepath.Clean(dir) != filepath.Clean(p.DataDir) {
		return fmt.Errorf("port %d is served by another cluster (%s)", p.Port, dir)
	}
	return nil
}

// URL returns a postgres:// URL for database db with the superuser
// credentials and sslmode=disable.
func (p *Postgres) URL(db string) string {
	return p.URLAs(p.User, p.Password, db)
}

// URLAs returns the URL for another role/password.
func (p *Postgres) URLAs(user, password, db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort(p.Host, strconv.Itoa(p.Port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Exec runs SQL statements against database db as the superuser (via pgx,
// a short-lived connection). Several statements may be separated by ";".
func (p *Postgres) Exec(ctx context.Context, db string, sql string) error {
	conn, err := pgx.Connect(ctx, p.URL(db))
	if err != nil {
		return fmt.Errorf("testsrv: connect to %s: %w", db, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("testsrv: exec on %s: %w", db, err)
	}
	return nil
}

// CreateDatabase creates an empty database.
func (p *Postgres) CreateDatabase(ctx context.Context, name string) error {
	return p.Exec(ctx, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
}

// Stop shuts the server down (fast shutdown), waits, and removes its
// files. It is idempotent.
func (p *Postgres) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return p.stopErr
	}
	p.stopped = true
	var errs []error
	if p.proc != nil {
		// SIGINT is postgres's "fast shutdown". The process is the
		// postmaster itself (no pg_ctl, no runuser in between).
		errs = append(errs, p.proc.stop(os.Interrupt, time.Minute))
	}
	if err := os.RemoveAll(p.base); err != nil {
		errs = append(errs, fmt.Errorf("testsrv: %w", err))
	}
	p.stopErr = errors.Join(errs...)
	return p.stopErr
}
