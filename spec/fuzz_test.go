package spec

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Fuzz targets kept in the repository (make fuzz runs each for FUZZTIME).
// Seeds are added here and in testdata/fuzz/<Target>.

// FuzzLoad feeds arbitrary bytes to the loader as a spec file: it must
// never panic, and a failure is always an ErrorList naming the file.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(stackDoc("a", redisOnly)))
	f.Add([]byte(stackDoc("a", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: ./m, target: 1}\n")))
	f.Add([]byte(stackDoc("a", redisOnly) + "---\n" + stackDoc("b", "  redis:\n    url: redis://:p@x/0\n    config: {hz: 1000, save: \"\"}\n")))
	f.Add([]byte("---\n--- \n...\n# only comments\n"))
	f.Add([]byte("apiVersion: dbops/v1\nkind: Stack\nmetadata: {name: x}\nspec: {redis: {url: '${file:/nonexistent}'}}\n"))
	root := f.TempDir()
	os.MkdirAll(filepath.Join(root, ".git"), 0o755)
	os.MkdirAll(filepath.Join(root, "m"), 0o755)
	os.WriteFile(filepath.Join(root, "m", "00001_a.sql"), []byte(migration), 0o644)
	f.Fuzz(func(t *testing.T, data []byte) {
		file := filepath.Join(root, "s.yaml")
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load([]string{file}, Options{Root: root, Getenv: testEnv, KeepUnsetVars: true})
		var list ErrorList
		if err != nil && !errors.As(err, &list) {
			t.Fatalf("not an ErrorList: %v", err)
		}
		for _, e := range list {
			if e.File != file {
				t.Fatalf("error without its file: %+v", e)
			}
		}
	})
}

// FuzzNormalizeRedis: normalising never panics and is idempotent, so a
// desired value and the server's answer for it compare equal.
func FuzzNormalizeRedis(f *testing.F) {
	for _, s := range [][2]string{{"maxmemory", "256mb"}, {"save", "3600 1 300 100"}, {"appendonly", "YES"},
		{"maxmemory-policy", "allkeys-lru"}, {"hz", "1000"}, {"maxclients", "0"}, {"maxmemory", "18446744073709551615gb"},
		{"slowlog-log-slower-than", "-1"}, {"unknown-param", " text "}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		n, err := NormalizeRedis(name, value)
		if err != nil {
			return
		}
		again, err := NormalizeRedis(name, n)
		if err != nil || again != n {
			t.Fatalf("NormalizeRedis(%q, %q) = %q, then %q, %v", name, value, n, again, err)
		}
		RedisStored(name, n)
	})
}

// shownFor is everything dbops may show of a connection string.
func shownFor(raw string) string {
	var b strings.Builder
	if _, err := ParsePostgres(raw); err != nil {
		b.WriteString(err.Error())
	}
	if _, err := ParseRedis(raw); err != nil {
		b.WriteString(err.Error())
	}
	b.WriteString(Redact(raw) + PostgresServer(raw) + RedisServer(raw))
	return b.String()
}

// FuzzRedaction: whatever the password and however it is written (escaped
// or not, URL or keyword/value), no message, redacted form or server name
// shows it.
func FuzzRedaction(f *testing.F) {
	f.Add("app", "s3cr/t#x?y@z% é", "db:5432", uint8(0))
	f.Add("app", "12/cd@host", "db", uint8(2))
	f.Add("", "p@ss word", "cache:6379", uint8(5))
	f.Add("u", "a'b\\c", "h:1", uint8(3))
	f.Fuzz(func(t *testing.T, user, password, host string, form uint8) {
		if len(password) < 6 || strings.ContainsAny(user+host, "\x00") {
			return
		}
		build := func(pw string) string {
			esc := url.UserPassword(user, pw).String()
			switch form % 7 {
			case 0:
				return "postgres://" + esc + "@" + host + "/db"
			case 1:
				return "postgresql://" + user + "@" + host + "/db?password=" + url.QueryEscape(pw)
			case 2:
				return "postgres://" + user + ":" + pw + "@" + host + "/db"
			case 3:
				return "host=" + host + " user=" + user + " password='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(pw) + "'"
			case 4:
				return "redis://" + esc + "@" + host + "/0"
			case 5:
				return "redis://:" + pw + "@" + host + "/0"
			default:
				return "host=" + host + " password=" + pw
			}
		}
		other := strings.Repeat("Q", len(password))
		if strings.Contains(shownFor(build(other)), password) {
			return // the password is text dbops shows anyway (host, user, message words)
		}
		if shown := shownFor(build(password)); strings.Contains(shown, password) {
			t.Fatalf("password %q shown: %q", password, shown)
		}
	})
}

// FuzzGooseParse: goose's parser, as validate runs it on migration files,
// never panics or hangs on any file content.
func FuzzGooseParse(f *testing.F) {
	f.Add([]byte(migration))
	f.Add([]byte("-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n"))
	f.Add([]byte("-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (c);\n-- +goose Down\nDROP INDEX i;\n"))
	f.Add([]byte("-- +goose ENVSUB ON\n-- +goose Up\nSELECT '${HOME}';\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, "00001_f.sql"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		ParseMigration(dir, "00001_f.sql")
	})
}
