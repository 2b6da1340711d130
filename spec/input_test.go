package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func loadErr(t *testing.T, root, file string, offline bool) (string, *Result) {
	t.Helper()
	res, err := Load([]string{filepath.Join(root, file)}, Options{Root: root, Getenv: testEnv, KeepUnsetVars: offline})
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if res != nil {
		for _, w := range res.Warnings {
			msg += "\nwarning: " + w.Error()
		}
	}
	return msg, res
}

// A line longer than the old scanner buffer (16 MiB) used to end the file
// silently: the documents after it were never read and validate said
// "valid".
func TestLongLineDoesNotEndFile(t *testing.T) {
	root := writeTree(t, map[string]string{".git/HEAD": "x"})
	long := "# " + strings.Repeat("x", 17<<20) + "\n"
	body := stackDoc("first", redisOnly) + long + "---\n" +
		stackDoc("second", "  redis:\n    url: ${REDIS_URL}\n    config:\n      maxmemory: 12qq\n")
	os.WriteFile(filepath.Join(root, "s.yaml"), []byte(body), 0o644)
	msg, _ := loadErr(t, root, "s.yaml", false)
	if !strings.Contains(msg, `stack "second": spec.redis.config.maxmemory: "12qq" is not a memory size`) {
		t.Errorf("the document after the long line was not checked: %q", msg)
	}

	big := make([]byte, 32<<20+1)
	for i := range big {
		big[i] = '#'
	}
	os.WriteFile(filepath.Join(root, "big.yaml"), big, 0o644)
	if msg, _ := loadErr(t, root, "big.yaml", false); !strings.Contains(msg, "big.yaml: larger than 32 MiB, the limit for a spec file") {
		t.Errorf("over-size file: %q", msg)
	}
}

func TestLoaderErrorsNameField(t *testing.T) {
	const mig = "-- +goose Up\nSELECT 1;\n"
	tests := []struct {
		name, body string
		want       string
	}{
		{"target beyond int64", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: ./m, target: 99999999999999999999}\n",
			`s.yaml: stack "s": spec.postgres.migrations.target: 100000000000000000000 is larger than the largest migration version`},
		{"target beyond int64 as string", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: ./m, target: \"99999999999999999999\"}\n",
			`s.yaml: stack "s": spec.postgres.migrations.target: 99999999999999999999 is larger than the largest migration version`},
		{"baseline beyond int64", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: ./m, baseline: 99999999999999999999}\n",
			`s.yaml: stack "s": spec.postgres.migrations.baseline: 100000000000000000000 is larger than the largest migration version`},
		{"upper-case parameter", "  redis:\n    url: ${REDIS_URL}\n    config: {MAXMEMORY: 1gb}\n",
			`s.yaml: stack "s": spec.redis.config.MAXMEMORY: Redis parameter names are lower-case letters, digits and '-': write "maxmemory"`},
		{"immutable parameter", "  redis:\n    url: ${REDIS_URL}\n    config: {daemonize: yes}\n",
			`stack "s": spec.redis.config.daemonize: daemonize cannot be changed at runtime`},
		{"protected parameter", "  redis:\n    url: ${REDIS_URL}\n    config: {dir: /tmp}\n",
			`stack "s": spec.redis.config.dir: dir is a protected parameter`},
		{"out of range", "  redis:\n    url: ${REDIS_URL}\n    config: {maxclients: 0}\n",
			`stack "s": spec.redis.config.maxclients: 0 is out of range: Redis accepts maxclients from 1 to 4294967295`},
		{"clamped value warned", "  redis:\n    url: ${REDIS_URL}\n    config: {hz: 1000}\n",
			`warning: ` + "%ROOT%" + `/s.yaml: stack "s": spec.redis.config.hz: Redis stores hz=500 for the requested 1000`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeTree(t, map[string]string{".git/HEAD": "x", "m/00001_a.sql": mig, "s.yaml": stackDoc("s", tt.body)})
			msg, _ := loadErr(t, root, "s.yaml", true)
			if want := strings.ReplaceAll(tt.want, "%ROOT%", root); !strings.Contains(msg, want) {
				t.Errorf("got %q\nwant %q", msg, want)
			}
		})
	}
}

func TestMigrationFilesChecked(t *testing.T) {
	outside := writeTree(t, map[string]string{"evil.sql": "-- +goose Up\nDROP TABLE users;\n"})
	tests := []struct {
		name  string
		files map[string]string
		link  string // m/<link> → outside/evil.sql
		want  string
	}{
		{"symlinked file outside the repository", map[string]string{"m/00001_a.sql": "-- +goose Up\nSELECT 1;\n"}, "00002_evil.sql",
			"spec.postgres.migrations.dir: 00002_evil.sql resolves to " + filepath.Join(outside, "evil.sql") + ", outside the repository root"},
		{"StatementBegin without End", map[string]string{"m/00001_a.sql": "-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n"}, "",
			"spec.postgres.migrations.dir: goose cannot parse 00001_a.sql: failed to parse 00001_a.sql: failed to parse migration: missing '-- +goose StatementEnd' annotation"},
		{"no Up annotation", map[string]string{"m/00001_a.sql": "SELECT 1;\n"}, "",
			"00001_a.sql has no -- +goose Up annotation: goose would run nothing from it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.files[".git/HEAD"] = "x"
			tt.files["s.yaml"] = stackDoc("s", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: ./m}\n")
			root := writeTree(t, tt.files)
			if tt.link != "" {
				if err := os.Symlink(filepath.Join(outside, "evil.sql"), filepath.Join(root, "m", tt.link)); err != nil {
					t.Fatal(err)
				}
			}
			msg, _ := loadErr(t, root, "s.yaml", true)
			if !strings.Contains(msg, tt.want) {
				t.Errorf("got %q\nwant %q", msg, tt.want)
			}
		})
	}
}
