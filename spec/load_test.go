package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree creates files (path → content) under a new temp dir and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

var testEnv = env(map[string]string{
	"PG_URL":    "postgres://amanat:pgSecret42@db:5432/amanat",
	"REDIS_URL": "redis://:redisSecret42@cache:6379/0",
})

const migration = "-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 1;\n"

func stackDoc(name, body string) string {
	return "apiVersion: dbops/v1\nkind: Stack\nmetadata:\n  name: " + name + "\nspec:\n" + body
}

const redisOnly = "  redis:\n    url: ${REDIS_URL}\n    config:\n      maxmemory: 256mb\n"

func TestLoadValid(t *testing.T) {
	root := writeTree(t, map[string]string{
		".git/HEAD":                   "ref: refs/heads/main\n",
		"migrations/00001_a.sql":      migration,
		"migrations/00002_b.sql":      migration,
		"envs/dev/stack.yaml":         stackDoc("dev", "  postgres:\n    url: ${PG_URL}\n    migrations:\n      dir: ../../migrations\n      target: 2\n"),
		"envs/prod/stack.yml":         stackDoc("prod", "  postgres:\n    url: postgres://db:5432/prod\n    migrations:\n      dir: ../../migrations\n"),
		"envs/prod/more.yaml":         stackDoc("cache-a", redisOnly) + "---\n# second document\n" + stackDoc("cache-b", strings.Replace(redisOnly, "maxmemory: 256mb", "hz: 10", 1)) + "---\n",
		"envs/prod/notes.txt":         "not yaml, ignored",
		"envs/prod/.hidden/skip.yaml": "not: a stack",
	})
	res, err := Load([]string{filepath.Join(root, "envs")}, Options{Getenv: testEnv})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	names := map[string]Stack{}
	for _, st := range res.Stacks {
		names[st.Metadata.Name] = st
	}
	if len(names) != 4 {
		t.Fatalf("got stacks %v, want dev, prod, cache-a, cache-b", names)
	}
	wantDir, _ := filepath.EvalSymlinks(filepath.Join(root, "migrations"))
	for _, n := range []string{"dev", "prod"} {
		m := names[n].Spec.Postgres.Migrations
		if m.Path != wantDir {
			t.Errorf("%s: migrations path %q, want %q", n, m.Path, wantDir)
		}
		if m.Table != DefaultMigrationTable {
			t.Errorf("%s: table %q, want default", n, m.Table)
		}
	}
	if tg := names["dev"].Spec.Postgres.Migrations.Target; !tg.Pinned || tg.Version != 2 {
		t.Errorf("dev target = %+v, want version 2", tg)
	}
	if tg := names["prod"].Spec.Postgres.Migrations.Target; tg.Pinned {
		t.Errorf("prod target = %+v, want latest", tg)
	}
	if got := names["dev"].Spec.Postgres.URL; got != "postgres://amanat:pgSecret42@db:5432/amanat" {
		t.Errorf("url not expanded: %q", got)
	}
}

// TestLoadParsesSchedules checks that Load hands out parsed schedules and
// windows, and that -1 (unlimited) retention passes schema and checks.
func TestLoadParsesSchedules(t *testing.T) {
	root := writeTree(t, map[string]string{"s.yaml": stackDoc("a", `  redis: {url: "redis://c:1"}
  maintenanceWindows:
    - {start: "0 22 * * *", duration: 2h, timezone: Europe/Berlin}
  backups:
    - {name: nightly, source: redis, schedule: "0 3 * * *", timezone: Asia/Tokyo, destination: /b, retention: {keepLast: 2, keepMonthly: -1}}
`)})
	res, err := Load([]string{root}, Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	st := res.Stacks[0].Spec
	b := st.Backups[0]
	if got := b.Schedule.Next(utc("2025-06-10T00:00:00Z")); !got.Equal(utc("2025-06-10T18:00:00Z")) {
		t.Errorf("schedule next = %v, want 03:00 in Tokyo", got)
	}
	if b.Retention.KeepMonthly != Unlimited {
		t.Errorf("keepMonthly = %d, want Unlimited", b.Retention.KeepMonthly)
	}
	open, until, _ := st.MaintenanceWindows.Open(utc("2025-06-10T21:00:00Z"))
	if !open || !until.Equal(utc("2025-06-10T22:00:00Z")) {
		t.Errorf("window open = %v until %v, want open until 00:00 Berlin", open, until)
	}
}

func TestLoadAppendonlyBoolOrString(t *testing.T) {
	for _, v := range []string{"yes", "\"yes\"", "true", "YES"} {
		root := writeTree(t, map[string]string{"s.yaml": stackDoc("a", "  redis:\n    url: redis://cache:6379\n    config:\n      appendonly: "+v+"\n      maxmemory: 1073741824\n")})
		res, err := Load([]string{root}, Options{Root: root})
		if err != nil {
			t.Fatalf("appendonly: %s: %v", v, err)
		}
		got := res.Stacks[0].Spec.Redis.Config["appendonly"]
		if n, _ := NormalizeRedis("appendonly", string(got)); n != "yes" {
			t.Errorf("appendonly: %s read as %q", v, got)
		}
		if got := res.Stacks[0].Spec.Redis.Config["maxmemory"]; got != "1073741824" {
			t.Errorf("numeric maxmemory read as %q", got)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string // each must appear in the error text
	}{
		{
			name:  "the issue's example message",
			files: map[string]string{"envs/prod.yaml": stackDoc("amanat-prod", "  redis:\n    url: redis://cache:6379\n    config:\n      maxmemory: 256mbb\n")},
			want:  []string{`envs/prod.yaml: stack "amanat-prod": spec.redis.config.maxmemory: "256mbb" is not a memory size`},
		},
		{
			name:  "every error is listed, unknown fields with their path",
			files: map[string]string{"s.yaml": stackDoc("a", "  redis:\n    url: redis://cache:6379\n    confg: {}\n    config:\n      appendfsync: sometimes\n      maxmemory-policy: lru\n      save: \"3600\"\n  postgress: {}\n")},
			want: []string{
				`s.yaml: stack "a": spec.redis.confg: unknown field`,
				`s.yaml: stack "a": spec.postgress: unknown field`,
				`spec.redis.config.appendfsync: "sometimes" is not one of always, everysec, no`,
				`spec.redis.config.maxmemory-policy: "lru" is not one of`,
				`spec.redis.config.save: "3600" is not a list of <seconds> <changes> pairs`,
			},
		},
		{
			name:  "errors across files and documents",
			files: map[string]string{"a.yaml": stackDoc("a", "  redis:\n    url: redis://c:1\n    config: {maxmemory: x}\n") + "---\n" + stackDoc("b", "  redis:\n    url: redis://c:1\n    config: {hz: many}\n"), "b.yaml": "apiVersion: dbops/v2\nkind: Stack\nmetadata: {name: c}\nspec: {}\n"},
			want:  []string{`a.yaml: stack "a": spec.redis.config.maxmemory`, `a.yaml: stack "b": spec.redis.config.hz: "many" is not an integer`, `b.yaml: stack "c": apiVersion`},
		},
		{
			name:  "duplicate names",
			files: map[string]string{"a.yaml": stackDoc("same", redisOnly), "b.yaml": stackDoc("same", redisOnly)},
			want:  []string{`b.yaml: stack "same": metadata.name: duplicate stack name, already defined in`},
		},
		{
			name:  "unset variable",
			files: map[string]string{"a.yaml": stackDoc("a", "  redis:\n    url: ${NOPE_URL}\n")},
			want:  []string{`spec.redis.url: environment variable NOPE_URL is not set`},
		},
		{
			name:  "missing required fields",
			files: map[string]string{"a.yaml": "apiVersion: dbops/v1\nkind: Stack\nmetadata: {name: a}\nspec:\n  postgres:\n    migrations: {}\n"},
			want:  []string{`spec.postgres.url: required field is missing`, `spec.postgres.migrations.dir: required field is missing`},
		},
		{
			name:  "empty spec",
			files: map[string]string{"a.yaml": stackDoc("a", "  {}\n")},
			want:  []string{`stack "a": spec: a stack needs postgres, redis or both`},
		},
		{
			name:  "a credential is not managed",
			files: map[string]string{"a.yaml": stackDoc("a", "  redis:\n    url: redis://c:1\n    config: {requirepass: hunter2}\n")},
			want:  []string{`spec.redis.config.requirepass: requirepass holds a credential`},
		},
		{
			name:  "bad YAML",
			files: map[string]string{"a.yaml": "apiVersion: dbops/v1\nkind: [\n"},
			want:  []string{`a.yaml: document at line 1:`},
		},
		{
			name:  "target not in dir",
			files: map[string]string{".git/HEAD": "x", "m/00001_a.sql": migration, "a.yaml": stackDoc("a", "  postgres:\n    url: postgres://db/x\n    migrations: {dir: m, target: 7}\n")},
			want:  []string{`spec.postgres.migrations.target: version 7 is not in m`},
		},
		{
			name:  "dir escaping the repository",
			files: map[string]string{".git/HEAD": "x", "envs/a.yaml": stackDoc("a", "  postgres:\n    url: postgres://db/x\n    migrations: {dir: ../..}\n")},
			want:  []string{`spec.postgres.migrations.dir: ../.. resolves to`, `outside the repository root`},
		},
		{
			name:  "dir missing",
			files: map[string]string{".git/HEAD": "x", "a.yaml": stackDoc("a", "  postgres:\n    url: postgres://db/x\n    migrations: {dir: nowhere}\n")},
			want:  []string{`spec.postgres.migrations.dir: nowhere does not exist`},
		},
		{
			name: "backup jobs and maintenance windows",
			files: map[string]string{"a.yaml": stackDoc("a", `  redis: {url: "redis://c:1"}
  backupBeforeMigrate: nope
  maintenanceWindows:
    - {start: "0 2 * * SUN", duration: 2h, timezone: Europe/Berlin}
    - {start: "0 0 2 * * SUN", duration: "-1h", timezone: Mars/Olympus}
  backups:
    - {name: ok, source: redis, schedule: "@every 6h", destination: /b, retention: {keepLast: 1}}
    - {name: six, source: redis, schedule: "0 0 3 * * *", timezone: Narnia/Cair, destination: rel/dir, retention: {}, verify: restore}
    - {name: ok, source: postgres, schedule: "@daily", destination: /b, retention: {keepDaily: 7}}
`)},
			want: []string{
				`spec.backups[1].schedule: "0 0 3 * * *": expected exactly 5 fields`,
				`spec.backups[1].timezone: "Narnia/Cair" is not a known IANA time zone`,
				`spec.backups[1].destination: "rel/dir" must be an absolute folder`,
				`spec.backups[1].retention: empty`,
				`spec.backups[1].verify: restore verification is for postgres backups`,
				`spec.backups[2].name: duplicate backup job "ok"`,
				`spec.backups[2].source: postgres backups need spec.postgres`,
				`spec.backupBeforeMigrate: "nope" is not a postgres backup job of this stack`,
				`spec.maintenanceWindows[1].start: "0 0 2 * * SUN": expected exactly 5 fields`,
				`spec.maintenanceWindows[1].duration: "-1h" is not a positive duration`,
				`spec.maintenanceWindows[1].timezone: "Mars/Olympus" is not a known IANA time zone`,
			},
		},
		{
			// Both were accepted by validate: the window deferred risky
			// changes "until 0001-01-01", the job was refused by plan and
			// never fired by dbops run.
			name: "a window that cannot open, a schedule too frequent",
			files: map[string]string{"envs/prod.yaml": stackDoc("amanat-prod", `  redis: {url: "redis://c:1"}
  maintenanceWindows:
    - {start: "@every 1h", duration: 30m}
    - {start: "0 0 30 2 *", duration: 1h}
    - {start: "@weekly", duration: "2 hours", timezone: Local}
  backups:
    - {name: often, source: redis, schedule: "@every 10s", destination: /b, retention: {keepLast: 1, keepDaily: -2}}
`)},
			want: []string{
				`envs/prod.yaml: stack "amanat-prod": spec.maintenanceWindows[0].start: @every 1h: @every has no fixed start`,
				`envs/prod.yaml: stack "amanat-prod": spec.maintenanceWindows[1].start: "0 0 30 2 *" never fires`,
				`envs/prod.yaml: stack "amanat-prod": spec.maintenanceWindows[2].duration: "2 hours" is not a positive duration`,
				`envs/prod.yaml: stack "amanat-prod": spec.maintenanceWindows[2].timezone: "Local" depends on the host`,
				`envs/prod.yaml: stack "amanat-prod": spec.backups[0].schedule: "@every 10s": interval 10s is shorter than 1m0s`,
				`envs/prod.yaml: stack "amanat-prod": spec.backups[0].retention.keepDaily: -2 is negative: use a count, or -1 for unlimited`,
			},
		},
		{
			name: "YAML 1.1 booleans where a string is wanted",
			files: map[string]string{
				"off.yaml":    stackDoc("off", redisOnly),
				"labels.yaml": "apiVersion: dbops/v1\nkind: Stack\nmetadata:\n  name: a\n  labels: {pci: yes, tier: On}\nspec:\n" + redisOnly,
			},
			want: []string{
				`off.yaml: stack "off": metadata.name: YAML reads off as a boolean: quote it (name: "off")`,
				`labels.yaml: stack "a": metadata.labels.pci: YAML reads yes as a boolean: quote it (pci: "yes")`,
				`labels.yaml: stack "a": metadata.labels.tier: YAML reads On as a boolean: quote it (tier: "On")`,
			},
		},
		{
			// name: off stops decoding, so only the schema speaks: its
			// pattern errors quote the field's description, not a regexp.
			name:  "schema pattern errors say what the field wants",
			files: map[string]string{"a.yaml": stackDoc("off", "  redis: {url: \"redis://c:1\"}\n  maintenanceWindows:\n    - {start: \"@every 1h\", duration: 1h}\n")},
			want: []string{
				`a.yaml: stack "off": spec.maintenanceWindows[0].start: "@every 1h" is not valid here: 5-field cron or @daily, @weekly...: when the window opens (not @every`,
			},
		},
		{
			name:  "wrong scheme, password not shown",
			files: map[string]string{"a.yaml": stackDoc("a", "  postgres:\n    url: mysql://root:pgSecret42@db/x\n")},
			want:  []string{`spec.postgres.url: scheme mysql:// is not accepted (value hidden)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeTree(t, tt.files)
			t.Chdir(root)
			_, err := Load([]string{"."}, Options{Getenv: testEnv})
			if err == nil {
				t.Fatal("Load succeeded, want errors")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q; got:\n%s", w, msg)
				}
			}
			if strings.Contains(msg, "Secret42") {
				t.Errorf("error shows a password:\n%s", msg)
			}
		})
	}
}

// TestLoadStacksDoNotFight: two stacks managing one thing are an error
// naming both; offline, with ${VAR} unset, identical text still compares
// and anything else is a warning that says it was not compared.
func TestLoadStacksDoNotFight(t *testing.T) {
	pg := func(name, url string) string {
		return stackDoc(name, "  postgres:\n    url: "+url+"\n    migrations: {dir: m}\n")
	}
	dz := func(name, url, schema string) string { // drizzle-kit output in d
		return stackDoc(name, "  postgres:\n    url: "+url+"\n    migrations: {dir: d, schema: "+schema+"}\n")
	}
	rd := func(name, url, param string) string {
		return stackDoc(name, "  redis:\n    url: "+url+"\n    config: {"+param+": \"1\"}\n")
	}
	tests := []struct {
		name    string
		files   map[string]string
		vars    map[string]string
		offline bool
		err     string // "" for none
		warn    string
	}{
		{name: "same database after expansion", files: map[string]string{"a.yaml": pg("a", "${A_URL}"), "b.yaml": pg("b", "postgres://u:pw@DB:5432/app?sslmode=disable")},
			vars: map[string]string{"A_URL": "postgres://other:pw@db/app"},
			err:  `b.yaml: stack "b": spec.postgres.url: db:5432/app is also managed by stack "a" (a.yaml)`},
		{name: "other database", files: map[string]string{"a.yaml": pg("a", "postgres://db/app"), "b.yaml": pg("b", "postgres://db/app2")}},
		{name: "drizzle and goose stacks on one database", files: map[string]string{"a.yaml": pg("a", "postgres://db/app"), "b.yaml": dz("b", "postgres://db:5432/app", "drizzle")},
			err: `b.yaml: stack "b": spec.postgres.url: db:5432/app is also managed by stack "a" (a.yaml)`},
		{name: "two drizzle stacks, other migrationsSchema, one database", files: map[string]string{"a.yaml": dz("a", "postgres://db/app", "one"), "b.yaml": dz("b", "postgres://db/app", "two")},
			err: `b.yaml: stack "b": spec.postgres.url: db:5432/app is also managed by stack "a" (a.yaml)`},
		{name: "drizzle stacks on other databases", files: map[string]string{"a.yaml": dz("a", "postgres://db/app", "drizzle"), "b.yaml": dz("b", "postgres://db/app2", "drizzle")}},
		{name: "same redis parameter, other db index", files: map[string]string{"a.yaml": rd("a", "redis://cache:6379/0", "hz"), "b.yaml": rd("b", "redis://cache/3", "hz")},
			err: `b.yaml: stack "b": spec.redis.config.hz: cache:6379 hz is also managed by stack "a" (a.yaml)`},
		{name: "other redis parameter", files: map[string]string{"a.yaml": rd("a", "redis://cache:6379", "hz"), "b.yaml": rd("b", "redis://cache:6379", "maxclients")}},
		{name: "offline: the same unset variable", offline: true, files: map[string]string{"a.yaml": rd("a", "${R}", "hz"), "b.yaml": rd("b", "${R}", "hz")},
			err: `b.yaml: stack "b": spec.redis.config.hz: ${R} hz is also managed by stack "a" (a.yaml)`},
		{name: "offline: cannot compare", offline: true, files: map[string]string{"a.yaml": pg("a", "${A_URL}"), "b.yaml": pg("b", "postgres://db/app")},
			warn: `a.yaml: stack "a": spec.postgres.url: not compared with the other stacks' servers (a variable is unset)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.files[".git/HEAD"] = "x"
			tt.files["m/00001_a.sql"] = migration
			tt.files["d/meta/_journal.json"] = journal("0000_init", 1700000000000)
			tt.files["d/0000_init.sql"] = drizzleSQL
			root := writeTree(t, tt.files)
			t.Chdir(root)
			res, err := Load([]string{"a.yaml", "b.yaml"}, Options{Getenv: env(tt.vars), KeepUnsetVars: tt.offline})
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("Load: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("Load error %v, want one containing %q", err, tt.err)
			}
			var warns []string
			for _, w := range res.Warnings {
				warns = append(warns, w.Error())
			}
			if got := strings.Join(warns, "\n"); tt.warn != "" && !strings.Contains(got, tt.warn) {
				t.Errorf("warnings lack %q:\n%s", tt.warn, got)
			}
		})
	}
}

func TestLoadUnsetVarIsWarningOffline(t *testing.T) {
	root := writeTree(t, map[string]string{"a.yaml": stackDoc("a", "  redis:\n    url: ${NOPE_URL}\n")})
	res, err := Load([]string{root}, Options{Getenv: testEnv, KeepUnsetVars: true})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0].Error(), "NOPE_URL is not set") {
		t.Errorf("warnings = %v, want one naming NOPE_URL", res.Warnings)
	}
}

func TestLoadRootOutsideGit(t *testing.T) {
	root := writeTree(t, map[string]string{
		"shared/00001_a.sql": migration,
		"repo/envs/a.yaml":   stackDoc("a", "  postgres:\n    url: postgres://db/x\n    migrations: {dir: ../../shared}\n"),
	})
	file := filepath.Join(root, "repo/envs/a.yaml")
	if _, err := Load([]string{file}, Options{Root: filepath.Join(root, "repo")}); err == nil || !strings.Contains(err.Error(), "outside the repository root") {
		t.Errorf("with --root repo: err = %v, want outside the repository root", err)
	}
	if _, err := Load([]string{file}, Options{Root: root}); err != nil {
		t.Errorf("with --root at the top: %v", err)
	}
}

func TestLoadSymlinkEscape(t *testing.T) {
	outside := writeTree(t, map[string]string{"00001_a.sql": migration})
	root := writeTree(t, map[string]string{".git/HEAD": "x", "a.yaml": stackDoc("a", "  postgres:\n    url: postgres://db/x\n    migrations: {dir: m}\n")})
	if err := os.Symlink(outside, filepath.Join(root, "m")); err != nil {
		t.Fatal(err)
	}
	if _, err := Load([]string{root}, Options{}); err == nil || !strings.Contains(err.Error(), "outside the repository root") {
		t.Errorf("err = %v, want a symlinked dir outside the repository refused", err)
	}
}
