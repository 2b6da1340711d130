package spec

import (
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pgForms writes one password in every accepted Postgres form: escaped
// URLs (both schemes), the unescaped URL people write, and keyword/value
// with quoting.
func pgForms(user, password, host, db string) map[string]string {
	esc := url.UserPassword(user, password).String()
	kv := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password)
	return map[string]string{
		"postgres-escaped":   "postgres://" + esc + "@" + host + "/" + db + "?sslmode=disable",
		"postgresql-escaped": "postgresql://" + esc + "@" + host + "/" + db + "?sslmode=disable",
		"postgres-raw":       "postgres://" + user + ":" + password + "@" + host + "/" + db + "?sslmode=disable",
		"query-password":     "postgres://" + user + "@" + host + "/" + db + "?sslmode=disable&password=" + strings.ReplaceAll(url.QueryEscape(password), "+", "%20"),
		"keyword-value":      "host=" + strings.Split(host, ":")[0] + " port=" + portOf(host) + " user=" + user + " password='" + kv + "' dbname=" + db + " sslmode=disable",
	}
}

func redisForms(password, host string) map[string]string {
	esc := url.UserPassword("", password).String()
	return map[string]string{
		"redis-escaped":  "redis://" + esc + "@" + host + "/0",
		"rediss-escaped": "rediss://" + esc + "@" + host + "/0",
		"redis-raw":      "redis://:" + password + "@" + host + "/0",
		"unix-escaped":   "unix://" + esc + "@/run/redis.sock?db=0",
	}
}

func portOf(host string) string {
	if i := strings.LastIndex(host, ":"); i >= 0 {
		return host[i+1:]
	}
	return "5432"
}

// genPassword draws a password over all printable ASCII plus a few
// multi-byte characters, always holding the characters that need escaping.
func genPassword(r *rand.Rand) string {
	const specials = "/#?@% :"
	extra := []string{"é", "ß", "中", "🔑"}
	var b strings.Builder
	for i := 0; i < 8+r.IntN(12); i++ {
		switch r.IntN(8) {
		case 0:
			b.WriteByte(specials[r.IntN(len(specials))])
		case 1:
			b.WriteString(extra[r.IntN(len(extra))])
		default:
			b.WriteByte(byte(' ' + r.IntN(95)))
		}
	}
	return "Pw" + b.String() + "zQ"
}

// leaks reports whether text holds the password or any run of 6 or more of
// its bytes, raw or escaped.
func leaks(text, password string) (string, bool) {
	for _, form := range []string{password, url.QueryEscape(password), url.PathEscape(password),
		url.UserPassword("", password).String()[1:]} {
		for n := len(form); n >= 6 && n >= len(form)/2; n-- {
			for i := 0; i+n <= len(form); i++ {
				if strings.Contains(text, form[i:i+n]) {
					return form[i : i+n], true
				}
			}
		}
		if len(form) < 6 && strings.Contains(text, form) {
			return form, true
		}
	}
	return "", false
}

func TestAcceptedForms(t *testing.T) {
	const pw = "s3cr/t#x?y@z% é"
	for name, raw := range pgForms("app", pw, "db.internal:5433", "shop") {
		if name == "postgres-raw" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			cfg, err := ParsePostgres(raw)
			if err != nil {
				t.Fatalf("ParsePostgres: %v", err)
			}
			if cfg.Password != pw || cfg.User != "app" {
				t.Errorf("password %q user %q", cfg.Password, cfg.User)
			}
			if got := PostgresServer(raw); got != "db.internal:5433/shop" {
				t.Errorf("PostgresServer = %q", got)
			}
			if got := Redact(raw); strings.Contains(got, "s3cr") {
				t.Errorf("Redact = %q", got)
			}
		})
	}
	for name, raw := range redisForms(pw, "cache:6380") {
		if name == "redis-raw" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			opt, err := ParseRedis(raw)
			if err != nil {
				t.Fatalf("ParseRedis: %v", err)
			}
			if opt.Password != pw {
				t.Errorf("password %q", opt.Password)
			}
			if got := Redact(raw); strings.Contains(got, "s3cr") {
				t.Errorf("Redact = %q", got)
			}
		})
	}
}

// libpq (and pgconn) take everything up to the first '@' before any '/' as
// the credentials, so these unescaped passwords are read as written.
func TestUnescapedAcceptedAsLibpq(t *testing.T) {
	for _, pw := range []string{"12?cd", "12#cd", "abécd", "a:b%%c"} {
		cfg, err := ParsePostgres("postgres://app:" + pw + "@db/shop")
		if pw == "a:b%%c" {
			if err == nil {
				t.Errorf("%q: a bad %%-escape must be refused", pw)
			}
			continue
		}
		if err != nil || cfg.Password != pw || PostgresServer("postgres://app:"+pw+"@db/shop") != "db:5432/shop" {
			t.Errorf("%q: cfg %+v err %v", pw, cfg, err)
		}
	}
}

func TestRefusedFormsHideValue(t *testing.T) {
	tests := []struct{ name, raw, want string }{
		{"unescaped slash", "postgres://app:12/cd@db/shop", "not a valid URL (value hidden)"},
		{"unescaped at", "postgres://app:ab@cd@db/shop", "not a valid URL (value hidden)"},
		{"unescaped space", "postgres://app:ab cd@db/shop", "not a valid URL (value hidden)"},
		{"bad escape", "postgres://app:ab%zzcd@db/shop", "not a valid URL (value hidden)"},
		{"other scheme", "mysql://app:abcd@db/shop", "scheme mysql:// is not accepted (value hidden)"},
		{"plain word", "abcdpassword", "not a valid URL (value hidden)"},
		{"bad keyword/value", "host=db password=ab cd", "not a valid keyword/value connection string (value hidden)"},
		{"unterminated quote", "host=db password='abcd", "not a valid keyword/value connection string (value hidden)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePostgres(tt.raw)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			for _, shown := range []string{err.Error(), Redact(tt.raw), PostgresServer(tt.raw)} {
				if strings.Contains(shown, "cd") || strings.Contains(shown, "abcd") {
					t.Errorf("shown %q", shown)
				}
			}
		})
	}
	for _, raw := range []string{"redis://:12/cd@cache:6379/0", "redis://:ab cd@cache/0", "http://cache:6379", "redis://:ab%zzcd@cache/0"} {
		if _, err := ParseRedis(raw); err == nil || strings.Contains(err.Error(), "cd") || !strings.Contains(err.Error(), Hidden) {
			t.Errorf("ParseRedis(%q) = %v", raw, err)
		}
	}
}

// TestLoadNeverShowsPassword loads generated passwords in every form, with
// the URL in the environment or in a secret file, and checks every error
// and warning Load produces.
func TestLoadNeverShowsPassword(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	root := writeTree(t, map[string]string{".git/HEAD": "x"})
	for i := 0; i < 40; i++ {
		pw := genPassword(r)
		forms := pgForms("app", pw, "db:5432", "shop")
		for name, raw := range redisForms(pw, "cache:6379") {
			forms[name] = raw
		}
		for name, raw := range forms {
			field := "postgres"
			if strings.Contains(name, "redis") || strings.HasPrefix(name, "unix") {
				field = "redis"
			}
			secret := filepath.Join(root, "secret")
			if err := os.WriteFile(secret, []byte(raw+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			body := "  " + field + ":\n    url: ${URL}\n---\n" + stackDoc("f", "  "+field+":\n    url: ${file:"+secret+"}\n")
			file := filepath.Join(root, "s.yaml")
			if err := os.WriteFile(file, []byte(stackDoc("e", body)), 0o644); err != nil {
				t.Fatal(err)
			}
			res, err := Load([]string{file}, Options{Getenv: env(map[string]string{"URL": raw})})
			var shown strings.Builder
			if err != nil {
				shown.WriteString(err.Error())
			}
			for _, w := range res.Warnings {
				shown.WriteString(w.Error())
			}
			for _, st := range res.Stacks {
				if pg := st.Spec.Postgres; pg != nil {
					shown.WriteString(PostgresServer(pg.URL) + Redact(pg.URL))
				}
				if rd := st.Spec.Redis; rd != nil {
					shown.WriteString(RedisServer(rd.URL) + Redact(rd.URL))
				}
			}
			if s, bad := leaks(shown.String(), pw); bad {
				t.Fatalf("%s: password %q: %q shown in:\n%s", name, pw, s, shown.String())
			}
			if got := Mask("before " + raw + " " + pw + " after"); strings.Contains(got, pw) {
				t.Fatalf("%s: Mask kept the password: %q", name, got)
			}
		}
	}
}

func TestEmptyAndFileSecrets(t *testing.T) {
	root := writeTree(t, map[string]string{
		".git/HEAD":  "x",
		"pg_url":     "postgres://app:fromFile42@db/shop\n",
		"empty":      "\n",
		"dir/x":      "",
		"stack.yaml": stackDoc("s", "  postgres:\n    url: ${file:pg_url}\n"),
	})
	res, err := Load([]string{filepath.Join(root, "stack.yaml")}, Options{Getenv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Stacks[0].Spec.Postgres.URL; got != "postgres://app:fromFile42@db/shop" {
		t.Errorf("URL = %q (trailing newline must be trimmed)", got)
	}
	if got := Mask("x fromFile42 y"); got != "x xxxxx y" {
		t.Errorf("file secret not masked: %q", got)
	}
	tests := []struct {
		name, url string
		offline   bool
		want      string // error, or warning when offline
	}{
		{"empty variable", "${PG_URL}", false, `stack "s": spec.postgres.url: environment variable PG_URL is not set or empty`},
		{"empty variable offline", "${PG_URL}", true, "warning: environment variable PG_URL is not set or empty"},
		{"missing file", "${file:/nonexistent/pg}", false, `stack "s": spec.postgres.url: secret file /nonexistent/pg does not exist`},
		{"missing file offline", "${file:/nonexistent/pg}", true, "warning: secret file /nonexistent/pg does not exist"},
		{"empty file", "${file:empty}", false, "secret file " + filepath.Join(root, "empty") + " is empty"},
		{"unreadable file", "${file:dir}", true, "secret file " + filepath.Join(root, "dir") + " cannot be read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(root, "t.yaml")
			os.WriteFile(file, []byte(stackDoc("s", "  postgres:\n    url: "+tt.url+"\n")), 0o644)
			res, err := Load([]string{file}, Options{Getenv: env(map[string]string{"PG_URL": ""}), KeepUnsetVars: tt.offline})
			var got string
			if err != nil {
				got = err.Error()
			}
			if res != nil {
				for _, w := range res.Warnings {
					got += "\nwarning: " + w.Msg
				}
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMissingCertFileNamed(t *testing.T) {
	for _, raw := range []string{
		"postgres://app:s3cret42@db/shop?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
		"host=db password=s3cret42 sslmode=verify-full sslrootcert=/nonexistent/ca.pem",
	} {
		_, err := ParsePostgres(raw)
		if err == nil || !strings.Contains(err.Error(), "cannot read /nonexistent/ca.pem") || strings.Contains(err.Error(), "s3cret42") {
			t.Errorf("ParsePostgres(%q) = %v", raw, err)
		}
	}
}
