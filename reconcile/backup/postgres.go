package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/amanat/dbops/spec"
)

// pgTarget is a PostgreSQL URL prepared for libpq tools: the URL without
// its password (for --dbname) and the password (for PGPASSWORD).
type pgTarget struct {
	raw, conn, password string
	server              string // host:port/db for messages
}

// pgxOnlyParams are URL parameters pgx understands and libpq rejects.
var pgxOnlyParams = []string{"statement_cache_capacity", "description_cache_capacity", "default_query_exec_mode",
	"pool_max_conns", "pool_min_conns", "pool_min_idle_conns", "pool_max_conn_lifetime", "pool_max_conn_idle_time",
	"pool_health_check_period", "pool_max_conn_lifetime_jitter"}

func parsePG(raw string) (pgTarget, error) {
	if raw == "" {
		return pgTarget{}, errors.New("no postgres URL")
	}
	cfg, err := spec.ParsePostgres(raw)
	if err != nil {
		return pgTarget{}, fmt.Errorf("postgres: %w", err)
	}
	server := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))) + "/" + cfg.Database
	u, err := url.Parse(raw)
	if !strings.Contains(raw, "://") || err != nil || u.User == nil || u.User.Username() != cfg.User {
		// keyword/value, or a URL net/url reads differently from libpq (an
		// unescaped password): libpq tools get a URL built from the parsed fields.
		conn := keywordConn(cfg)
		if strings.Contains(raw, "://") { // rewritten so withDatabase can change it
			u, _ := url.Parse(conn)
			raw = keywordValue(u, cfg.Password)
		}
		return pgTarget{raw: raw, conn: conn, password: cfg.Password, server: server}, nil
	}
	q := u.Query()
	q.Del("password")
	for _, p := range pgxOnlyParams {
		q.Del(p)
	}
	u.RawQuery = q.Encode()
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return pgTarget{raw: raw, conn: u.String(), password: cfg.Password, server: server}, nil
}

// keywordValue turns a URL made by keywordConn into keyword/value form
// with the password, for pgx.
func keywordValue(u *url.URL, password string) string {
	q := u.Query()
	kv := map[string]string{"user": u.User.Username(), "password": password, "dbname": strings.TrimPrefix(u.Path, "/"),
		"sslmode": q.Get("sslmode"), "host": q.Get("host"), "port": q.Get("port")}
	if u.Host != "" {
		kv["host"], kv["port"], _ = net.SplitHostPort(u.Host)
	}
	var b strings.Builder
	for _, k := range []string{"host", "port", "user", "password", "dbname", "sslmode"} {
		fmt.Fprintf(&b, "%s='%s' ", k, quoteKV(kv[k]))
	}
	return b.String()
}

func quoteKV(s string) string { return strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) }

// keywordConn is a postgres:// URL without password for a keyword/value
// connection string, from the fields pgconn parsed.
func keywordConn(cfg *pgconn.Config) string {
	mode := "disable"
	switch {
	case cfg.TLSConfig == nil:
	case len(cfg.Fallbacks) > 0 && cfg.Fallbacks[len(cfg.Fallbacks)-1].TLSConfig == nil:
		mode = "prefer"
	case cfg.TLSConfig.InsecureSkipVerify:
		mode = "require"
	default:
		mode = "verify-full"
	}
	u := url.URL{Scheme: "postgres", User: url.User(cfg.User), Path: "/" + cfg.Database,
		RawQuery: url.Values{"sslmode": {mode}}.Encode()}
	if strings.HasPrefix(cfg.Host, "/") {
		q := u.Query()
		q.Set("host", cfg.Host)
		q.Set("port", strconv.Itoa(int(cfg.Port)))
		u.RawQuery = q.Encode()
	} else {
		u.Host = net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	}
	return u.String()
}

// withDatabase returns the same server and credentials with another database.
func (t pgTarget) withDatabase(db string) pgTarget {
	swap := func(s string) string {
		if !strings.Contains(s, "://") { // keyword/value: a later key wins
			return s + " dbname='" + quoteKV(db) + "'"
		}
		u, _ := url.Parse(s)
		u.Path, u.RawPath = "/"+db, ""
		return u.String()
	}
	t.raw, t.conn = swap(t.raw), swap(t.conn)
	if i := strings.LastIndex(t.server, "/"); i >= 0 {
		t.server = t.server[:i+1] + db
	}
	return t
}

func (t pgTarget) env() []string {
	env := append(os.Environ(), "PGAPPNAME=dbops")
	if t.password != "" {
		env = append(env, "PGPASSWORD="+t.password)
	}
	return env
}

func (t pgTarget) scrub(s string) string { return spec.RedactText(spec.Scrub(s, t.password)) }

func (t pgTarget) connect(ctx context.Context, timeout time.Duration, readOnly bool) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(t.raw)
	if err != nil {
		return nil, fmt.Errorf("postgres %s: %s", t.server, t.scrub(err.Error()))
	}
	cfg.ConnectTimeout = timeout
	cfg.RuntimeParams["application_name"] = "dbops"
	if readOnly {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres %s: %s", t.server, t.scrub(err.Error()))
	}
	return c, nil
}

// runTool runs a libpq client program with the target's password in its
// environment; stdout goes to out (nil: discarded). Errors carry the end of
// its stderr, scrubbed.
func runTool(ctx context.Context, t pgTarget, bin string, args []string, out io.Writer) error {
	return runToolIn(ctx, t, bin, args, nil, out)
}

// runToolIn is runTool with in as the program's standard input (a backup
// streamed from object storage or decrypted on the way).
func runToolIn(ctx context.Context, t pgTarget, bin string, args []string, in io.Reader, out io.Writer) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = childAttr()
	cmd.Env = t.env()
	cmd.Stdin = in
	cmd.Stdout = out
	var stderr tailBuffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return toolError(ctx, t, bin, err, stderr.String())
	}
	return nil
}

func toolError(ctx context.Context, t pgTarget, bin string, err error, stderr string) error {
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	msg := strings.TrimSpace(t.scrub(stderr))
	if msg == "" {
		return fmt.Errorf("%s: %w", bin, err)
	}
	return fmt.Errorf("%s: %w: %s", bin, err, msg)
}

// tailBuffer keeps the last 8 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 8<<10 {
		t.b = t.b[len(t.b)-8<<10:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

var toolVersion = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// clientVersion runs `bin --version` and returns its major version
// (see serverMajor) and its output line.
func clientVersion(ctx context.Context, bin string) (int, string, error) {
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return 0, "", fmt.Errorf("%s --version: %w (install the PostgreSQL client or set its path)", bin, err)
	}
	line := strings.TrimSpace(string(out))
	major, ok := parseToolVersion(line)
	if !ok {
		return 0, line, fmt.Errorf("%s --version: cannot read the version in %q", bin, line)
	}
	return major, line, nil
}

// parseToolVersion reads "pg_dump (PostgreSQL) 15.18 ..." as 1500 and
// "... 9.6.24" as 906.
func parseToolVersion(line string) (int, bool) {
	m := toolVersion.FindStringSubmatch(line)
	if m == nil {
		return 0, false
	}
	major, _ := strconv.Atoi(m[1])
	minor := 0
	if major < 10 && m[2] != "" {
		minor, _ = strconv.Atoi(m[2])
	}
	return major*100 + minor, true
}

// serverMajor turns server_version_num into a comparable major version:
// 150004 is 1500, 90624 (9.6) is 906.
func serverMajor(num int) int {
	if num >= 100000 {
		return num / 10000 * 100
	}
	return num / 100
}

func majorString(m int) string {
	if m%100 == 0 {
		return strconv.Itoa(m / 100)
	}
	return fmt.Sprintf("%d.%d", m/100, m%100)
}

// CheckPgDump fails when the pg_dump of opts is older than a server whose
// server_version_num is serverNum, or cannot be run: what a backup of that
// server would fail on, checked without taking one (plan).
func CheckPgDump(ctx context.Context, opts Options, serverNum int, server string) error {
	client, _, err := clientVersion(ctx, opts.pgDump())
	if err != nil {
		return err
	}
	return checkVersions(opts.pgDump(), client, serverNum, server)
}

// checkVersions fails when the server is newer than the client tool, which
// pg_dump refuses.
func checkVersions(bin string, client, serverNum int, server string) error {
	if s := serverMajor(serverNum); s > client {
		return fmt.Errorf("%s is PostgreSQL %s but the server %s is PostgreSQL %s: pg_dump refuses a newer server; install a PostgreSQL %s client (or newer) and point --pg-dump at it",
			bin, majorString(client), server, majorString(s), majorString(s))
	}
	return nil
}

// snapshotInfo is read in the transaction whose snapshot pg_dump dumps.
type snapshotInfo struct {
	serverVersion string
	versionNum    int
	migration     int64
}

// migrationVersion returns goose's highest applied version (0 when the
// table is missing), read-only, like reconcile/postgres.Observe.
func migrationVersion(ctx context.Context, tx pgx.Tx, table, format string) (int64, error) {
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
		return 0, err
	}
	if !exists {
		return 0, nil
	}
	if format == "drizzle" { // table is already quoted
		var v int64
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(created_at), 0) FROM "+table).Scan(&v); err != nil {
			return 0, fmt.Errorf("read %s: %w", table, err)
		}
		return v, nil
	}
	ident := pgx.Identifier(strings.SplitN(table, ".", 2)).Sanitize()
	var v int64
	err := tx.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM (
		SELECT DISTINCT ON (version_id) version_id, is_applied FROM `+ident+` ORDER BY version_id, id DESC) t
		WHERE is_applied AND version_id <> 0`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", table, err)
	}
	return v, nil
}

// userTables lists the tables whose rows pg_dump dumps: ordinary and
// partitioned tables outside the system schemas, not owned by extensions.
const userTables = `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
	  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
	  AND n.nspname NOT LIKE 'pg\_temp\_%'
	  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
	ORDER BY 1, 2`

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func listTables(ctx context.Context, q querier) ([]pgx.Identifier, error) {
	rows, err := q.Query(ctx, userTables)
	if err != nil {
		return nil, err
	}
	var tables []pgx.Identifier
	for rows.Next() {
		var s, t string
		if err := rows.Scan(&s, &t); err != nil {
			return nil, err
		}
		tables = append(tables, pgx.Identifier{s, t})
	}
	return tables, rows.Err()
}

// rowCounts returns the exact row count of every user table.
func rowCounts(ctx context.Context, q querier) (map[string]int64, error) {
	tables, err := listTables(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	counts := make(map[string]int64, len(tables))
	for _, t := range tables {
		var n int64
		if err := q.QueryRow(ctx, "SELECT count(*) FROM "+t.Sanitize()).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s.%s: %w", t[0], t[1], err)
		}
		counts[t[0]+"."+t[1]] = n
	}
	return counts, nil
}

// dumpPostgres streams `pg_dump --format=custom` of the job's database
// into tf. pg_dump dumps the snapshot of a read-only repeatable-read
// transaction in which the server version, goose version and (for
// verify: restore) row counts are read, so all describe the same data.
func dumpPostgres(ctx context.Context, job Job, opts Options, tf io.Writer, m *Manifest) error {
	t, err := parsePG(job.PostgresURL)
	if err != nil {
		return err
	}
	m.Server = t.server
	client, line, err := clientVersion(ctx, opts.pgDump())
	if err != nil {
		return err
	}
	m.ClientVersion = line
	conn, err := t.connect(ctx, opts.connectTimeout(), true)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var info snapshotInfo
	var num string
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version'), current_setting('server_version_num')").Scan(&info.serverVersion, &num); err != nil {
		return fmt.Errorf("postgres %s: %s", t.server, t.scrub(err.Error()))
	}
	info.versionNum, _ = strconv.Atoi(num)
	m.ServerVersion = info.serverVersion
	if err := checkVersions(opts.pgDump(), client, info.versionNum, t.server); err != nil {
		return err
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("postgres %s: %s", t.server, t.scrub(err.Error()))
	}
	defer tx.Rollback(context.Background())
	var snapshot string
	if err := tx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&snapshot); err != nil {
		return fmt.Errorf("postgres %s: export snapshot: %s", t.server, t.scrub(err.Error()))
	}
	if info.migration, err = migrationVersion(ctx, tx, job.migrationTable(), job.MigrationFormat); err != nil {
		return fmt.Errorf("postgres %s: %s", t.server, t.scrub(err.Error()))
	}
	m.MigrationVersion = &info.migration

	args := []string{"--format=custom", "--no-password", "--snapshot=" + snapshot, "--dbname=" + t.conn}
	if err := streamTool(ctx, t, opts.pgDump(), args, tf); err != nil {
		return err
	}
	if (job.verifyMethod() == VerifyRestore || job.Drill != nil) && !opts.NoVerify {
		if m.RowCounts, err = rowCounts(ctx, tx); err != nil {
			return fmt.Errorf("postgres %s: %s", t.server, t.scrub(err.Error()))
		}
	}
	return nil
}

// streamTool runs a tool whose stdout is copied to w through a 1 MiB
// buffer; a failed write kills the tool.
func streamTool(ctx context.Context, t pgTarget, bin string, args []string, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = childAttr()
	cmd.Env = t.env()
	var stderr tailBuffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", bin, err)
	}
	_, copyErr := io.CopyBuffer(w, out, make([]byte, 1<<20))
	if copyErr != nil {
		cancel()
	}
	waitErr := cmd.Wait()
	switch {
	case copyErr != nil && !errors.Is(copyErr, os.ErrClosed):
		return fmt.Errorf("write backup: %w", copyErr)
	case waitErr != nil:
		return toolError(ctx, t, bin, waitErr, stderr.String())
	case copyErr != nil:
		return fmt.Errorf("write backup: %w", copyErr)
	}
	return nil
}
