package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/pressly/goose/v3"
)

// check validates what the schema cannot: URLs, paths, migration targets and
// Redis values. It fills in defaults and resolved paths on st.
func check(st *Stack, opts Options) (errs ErrorList, warns []FieldError) {
	add := func(list *[]FieldError, field, format string, args ...any) {
		*list = append(*list, FieldError{File: st.File, Stack: st.Metadata.Name, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	adderr := func(field, format string, args ...any) { add((*[]FieldError)(&errs), field, format, args...) }
	addwarn := func(field, msg string) { add(&warns, field, "%s", msg) }

	s := &st.Spec
	if s.DriftPolicy == "" {
		s.DriftPolicy = DriftCorrect
	}
	if s.Postgres == nil && s.Redis == nil {
		adderr("spec", "a stack needs postgres, redis or both")
	}
	if pg := s.Postgres; pg != nil {
		pg.URL = expandURL(pg.URL, "spec.postgres.url", st.File, opts, adderr, addwarn, checkPostgresURL)
		if m := pg.Migrations; m != nil && m.Dir != "" {
			for _, e := range checkMigrations(st.File, m, opts.Root) {
				adderr("spec.postgres.migrations."+e.Field, "%s", e.Msg)
			}
			checkMigrationSession(m, adderr)
		}
		if pg.Drift != nil {
			checkDrift(pg, st.File, opts, adderr, addwarn)
		}
		checkPostgresServer(pg, adderr)
	}
	if r := s.Redis; r != nil {
		r.URL = expandURL(r.URL, "spec.redis.url", st.File, opts, adderr, addwarn, checkRedisURL)
		for _, name := range sortedKeys(r.Config) {
			field := "spec.redis.config." + name
			if !paramName.MatchString(name) {
				adderr(field, "Redis parameter names are lower-case letters, digits and '-': write %q", strings.ToLower(name))
				continue
			}
			if slices.Contains(secretParams, name) {
				adderr(field, "%s holds a credential; dbops does not manage secrets (they would appear in plans)", name)
				continue
			}
			if msg := redisParamRule(name); msg != "" {
				adderr(field, "%s", msg)
				continue
			}
			norm, err := NormalizeRedis(name, string(r.Config[name]))
			if err != nil {
				adderr(field, "%s", err.Error())
			} else if stored, adjusted := RedisStored(name, norm); adjusted {
				addwarn(field, fmt.Sprintf("Redis stores %s=%s for the requested %s; write %s", name, stored, norm, stored))
			}
		}
	}
	checkKeyspaceJobs(s, adderr) // after the migrations: `after` names one of them
	checkBackups(s, st.File, opts, adderr, addwarn)
	checkWindows(s, adderr)
	return errs, warns
}

// checkMigrations resolves m.Dir against the YAML file's folder, keeps it
// inside the repository root, and checks the migrations there (migrations.go).
func checkMigrations(file string, m *Migrations, root string) []FieldError {
	var errs []FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	dir := m.Dir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(filepath.Dir(file), dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		bad("dir", "%v", err)
		return errs
	}
	repo, err := repoRoot(file, root)
	if err != nil {
		bad("dir", "%v", err)
		return errs
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		bad("dir", "%s does not exist (resolved against %s)", m.Dir, filepath.Dir(file))
		return errs
	}
	if rel, err := filepath.Rel(repo, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		bad("dir", "%s resolves to %s, outside the repository root %s", m.Dir, real, repo)
		return errs
	}
	if info, err := os.Stat(real); err != nil || !info.IsDir() {
		bad("dir", "%s is not a folder", m.Dir)
		return errs
	}
	m.Path = real
	checkMigrationSet(m, repo, bad)
	return errs
}

// MigrationVersions maps each goose migration version in dir to its file name.
func MigrationVersions(dir string) (map[int64]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[int64]string{}
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".sql" {
			continue
		}
		v, err := goose.NumericComponent(e.Name())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		if prev, ok := out[v]; ok {
			return nil, fmt.Errorf("version %d is used twice: %s and %s", v, prev, e.Name())
		}
		out[v] = e.Name()
	}
	return out, nil
}

// repoRoot is the git work tree holding file, or root outside git.
func repoRoot(file, root string) (string, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	r, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(r); err == nil {
		r = real
	}
	return r, nil
}

// paramName is the form of a Redis CONFIG parameter name (the schema's
// propertyNames pattern).
var paramName = regexp.MustCompile(`^[a-z0-9-]+$`)

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
