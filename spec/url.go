package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	goredis "github.com/redis/go-redis/v9"
)

// Connection strings are secrets: nothing derived from the raw text is ever
// shown. What is shown of a server is built from the fields the driver's own
// parser (pgconn, go-redis) produced: host, port and database.

// Hidden stands for a value that cannot be shown safely.
const Hidden = "(value hidden)"

// errHiddenURL is returned for input that does not parse; its text never
// includes any part of the value.
var errHiddenURL = errors.New("not a valid URL " + Hidden)

const encodeHint = "percent-encode special characters of the user and password " +
	"(/ %2F, @ %40, # %23, ? %3F, % %25, space %20, : %3A, non-ASCII as UTF-8 bytes)"

// PostgresConnForms lists the accepted forms, for messages.
const PostgresConnForms = "postgres://, postgresql:// or a keyword/value string (host=... dbname=...)"

// isPostgresURL tells the URL form from the keyword/value form, as pgconn does.
func isPostgresURL(raw string) bool {
	return strings.HasPrefix(raw, "postgres://") || strings.HasPrefix(raw, "postgresql://")
}

var safeScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]{0,20}$`)

// scheme returns the scheme of a URL-looking value when it is safe to show.
func scheme(raw string) (string, bool) {
	i := strings.Index(raw, "://")
	if i <= 0 || !safeScheme.MatchString(raw[:i]) {
		return "", false
	}
	return raw[:i], true
}

// parseURLStrict parses a URL and refuses the shapes an unescaped password
// produces: an '@' after the host part (password with / ? #) or anything
// net/url refuses (space, %, non-ASCII). Its errors never show the value.
func parseURLStrict(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", errHiddenURL, encodeHint)
	}
	// A password with '/' puts its tail and the real host in the path; with
	// '?' or '#' in the query or fragment, leaving no userinfo before them.
	if strings.Contains(u.Opaque, "@") || strings.Contains(u.RawPath+u.Path, "@") ||
		(u.User == nil && (strings.Contains(u.RawQuery, "@") || strings.Contains(u.Fragment, "@"))) {
		return nil, fmt.Errorf("%w: an '@' after the host; %s", errHiddenURL, encodeHint)
	}
	if u.User != nil && u.Host == "" && u.Scheme != "unix" {
		return nil, fmt.Errorf("%w: no host after the credentials; %s", errHiddenURL, encodeHint)
	}
	return u, nil
}

// ParsePostgres parses a Postgres connection string in any form pgconn
// accepts. Errors name the problem without any part of the value.
func ParsePostgres(raw string) (*pgconn.Config, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, errors.New("is empty: give " + PostgresConnForms)
	}
	if isPostgresURL(raw) {
		// pgconn parses URLs exactly as libpq does; its messages may quote
		// parts of the value, so they are never shown.
		cfg, err := pgconn.ParseConfig(raw)
		if err != nil {
			if ferr := fileError(err); ferr != nil {
				return nil, ferr
			}
			return nil, fmt.Errorf("%w: %s", errHiddenURL, encodeHint)
		}
		if err := misparsed(cfg); err != nil {
			return nil, err
		}
		return cfg, nil
	}
	if s, ok := scheme(raw); ok {
		return nil, fmt.Errorf("scheme %s:// is not accepted %s: give %s", s, Hidden, PostgresConnForms)
	}
	if strings.Contains(raw, "://") || !strings.Contains(raw, "=") {
		return nil, fmt.Errorf("%w: give %s", errHiddenURL, PostgresConnForms)
	}
	cfg, err := pgconn.ParseConfig(raw)
	if err != nil {
		if ferr := fileError(err); ferr != nil {
			return nil, ferr
		}
		return nil, fmt.Errorf("not a valid keyword/value connection string %s: "+
			"quote values holding spaces or quotes as 'it\\'s'", Hidden)
	}
	if err := misparsed(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// fileError reports a file the connection string names (sslrootcert,
// sslcert, sslkey, passfile) that cannot be read: a path is no secret, and
// "not a valid URL" would mislead.
func fileError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("cannot read %s, named by the connection string (sslrootcert, sslcert or sslkey): %v", pe.Path, pe.Err)
	}
	return nil
}

// misparsed refuses what an unescaped or unquoted password leaves behind: libpq takes
// the first '@' as the end of the credentials, so the rest of a password
// with '@' lands in the host, and a password with '/' ends the host part
// early and lands in the database name. Neither can hold an '@'.
func misparsed(cfg *pgconn.Config) error {
	hosts := []string{cfg.Host}
	for _, f := range cfg.Fallbacks {
		hosts = append(hosts, f.Host)
	}
	// In keyword/value form an empty value ("host= password=x") makes
	// libpq take the next word as the value: the host would show the
	// password.
	for _, h := range hosts {
		if strings.ContainsAny(h, "@= \t\n") {
			return fmt.Errorf("%w: the host holds '@', '=' or a space; %s; in keyword/value form quote values (host='db')", errHiddenURL, encodeHint)
		}
	}
	if strings.ContainsAny(cfg.Database, "@=") {
		return fmt.Errorf("%w: the database name holds '@' or '='; %s", errHiddenURL, encodeHint)
	}
	return nil
}

// RedisSchemes are the URL schemes go-redis accepts.
var RedisSchemes = []string{"redis", "rediss", "unix"}

// ParseRedis parses a redis://, rediss:// or unix:// URL with go-redis.
// Errors name the problem without any part of the value.
func ParseRedis(raw string) (*goredis.Options, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, errors.New("is empty: give a redis://, rediss:// or unix:// URL")
	}
	s, ok := scheme(raw)
	if !ok {
		return nil, fmt.Errorf("%w: give a redis://, rediss:// or unix:// URL", errHiddenURL)
	}
	if s != "redis" && s != "rediss" && s != "unix" {
		return nil, fmt.Errorf("scheme %s:// is not accepted %s: give a redis://, rediss:// or unix:// URL", s, Hidden)
	}
	u, err := parseURLStrict(raw)
	if err != nil {
		return nil, err
	}
	if s != "unix" && u.Host == "" {
		return nil, fmt.Errorf("no host %s", Hidden)
	}
	opt, err := goredis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", errHiddenURL, encodeHint)
	}
	return opt, nil
}

// PostgresServer names the server of a connection string from its parsed
// fields only: host:port/database, or Hidden when it does not parse.
func PostgresServer(raw string) string {
	cfg, err := ParsePostgres(raw)
	if err != nil {
		return Hidden
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))) + "/" + cfg.Database
}

// RedisServer names the server of a Redis URL from its parsed fields only:
// host:port (or the socket path), or Hidden when it does not parse.
func RedisServer(raw string) string {
	opt, err := ParseRedis(raw)
	if err != nil {
		return Hidden
	}
	return opt.Addr
}

// Redact returns a URL or connection string that can be shown: passwords
// and secret query parameters replaced by "xxxxx", Postgres keyword/value
// strings as host:port/database, anything that does not parse as Hidden.
func Redact(raw string) string {
	if raw == "" {
		return ""
	}
	if _, ok := scheme(raw); !ok {
		if isScpLike(raw) {
			return raw // user@host:path carries no password
		}
		if strings.ContainsAny(raw, "=@") || strings.Contains(raw, "://") {
			if cfg, err := ParsePostgres(raw); err == nil {
				return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))) + "/" + cfg.Database
			}
			return Hidden
		}
		if strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, ".") || strings.HasPrefix(raw, "~") {
			return raw // a local path
		}
		return Hidden
	}
	u, err := parseURLStrict(raw)
	if err != nil {
		return Hidden
	}
	if u.RawQuery != "" {
		// An '@' or a key that is not a plain name means credentials written
		// unescaped were read as the query (postgres://u?x:pw@h/db): hide it all.
		if strings.Contains(u.RawQuery, "@") {
			return Hidden
		}
		q := u.Query()
		for k := range q {
			if !queryKey.MatchString(k) {
				return Hidden
			}
			// A value with '=', '?' or '&' in it is another parameter that
			// unescaped text pushed into this one (host "h?a=" turns
			// "/db?password=..." into a's value): hidden like a secret.
			if secretKey(k) || slices.ContainsFunc(q[k], unsafeValue) {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
	}
	u.Fragment, u.RawFragment = "", ""
	return u.Redacted()
}

var queryKey = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// safeValue is a query value shown as is: names, numbers, durations,
// file paths, lists (sslmode=verify-full, connect_timeout=5, dial_timeout=2s).
var safeValue = regexp.MustCompile(`^[A-Za-z0-9_.,:/+ -]*$`)

func unsafeValue(v string) bool { return !safeValue.MatchString(v) }

var scpLike = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^:@\s]*$`)

func isScpLike(s string) bool { return scpLike.MatchString(s) }

// secretKey tells query parameters that carry credentials.
func secretKey(k string) bool {
	k = strings.ToLower(k)
	return strings.Contains(k, "pass") || strings.Contains(k, "token") || strings.Contains(k, "secret")
}

// Password returns the password a driver would send for raw, "" when none
// (or when it does not parse).
func Password(raw string) string {
	if cfg, err := ParsePostgres(raw); err == nil {
		return cfg.Password
	}
	if opt, err := ParseRedis(raw); err == nil {
		return opt.Password
	}
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		p, _ := u.User.Password()
		return p
	}
	return ""
}

// Secrets returns every string that must never be shown for a connection
// string: the parsed password, its escaped spellings, and, for values that
// do not parse, the raw value and the text where a password would sit.
func Secrets(raw string) []string {
	if raw == "" {
		return nil
	}
	var out []string
	_, pgErr := ParsePostgres(raw)
	_, redisErr := ParseRedis(raw)
	if Password(raw) != "" || (pgErr != nil && redisErr != nil) {
		out = append(out, raw) // a value that holds or may hold a password
	}
	add := func(s string) {
		if s != "" {
			out = append(out, s, url.QueryEscape(s), url.PathEscape(s),
				url.UserPassword("", s).String()[1:])
		}
	}
	add(Password(raw))
	// The text between "user:" and the last '@', as written: what an
	// unescaped password looks like to a reader even when it does not parse.
	rest := raw
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if at := strings.LastIndex(rest, "@"); at > 0 {
		userinfo := rest[:at]
		if c := strings.Index(userinfo, ":"); c >= 0 {
			out = append(out, userinfo[c+1:])
			if p, err := url.PathUnescape(userinfo[c+1:]); err == nil {
				add(p)
			}
		}
	}
	for _, m := range queryPassword.FindAllStringSubmatch(raw, -1) {
		out = append(out, m[2])
		if p, err := url.QueryUnescape(m[2]); err == nil {
			add(p)
		}
	}
	return out
}
