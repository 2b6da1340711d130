package spec

import (
	"fmt"
	"net/url"
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
		pg.URL = expandURL(pg.URL, "spec.postgres.url", opts, adderr, addwarn, "postgres", "postgresql")
		if m := pg.Migrations; m != nil && m.Dir != "" {
			for _, e := range checkMigrations(st.File, m, opts.Root) {
				adderr("spec.postgres.migrations."+e.Field, "%s", e.Msg)
			}
			checkMigrationSession(m, adderr)
		}
	}
	if r := s.Redis; r != nil {
		r.URL = expandURL(r.URL, "spec.redis.url", opts, adderr, addwarn, "redis", "rediss", "unix")
		for _, name := range sortedKeys(r.Config) {
			field := "spec.redis.config." + name
			if slices.Contains(secretParams, name) {
				adderr(field, "%s holds a credential; dbops does not manage secrets (they would appear in plans)", name)
				continue
			}
			if _, err := NormalizeRedis(name, string(r.Config[name])); err != nil {
				adderr(field, "%s", err.Error())
			}
		}
	}
	checkBackups(s, opts, adderr, addwarn)
	checkWindows(s, adderr)
	return errs, warns
}

// expandURL expands ${VAR} in a URL field and checks the result's form;
// an unset variable is a warning when opts.KeepUnsetVars allows it.
func expandURL(raw, field string, opts Options, bad func(field, format string, args ...any), warn func(field, msg string), schemes ...string) string {
	u, problem, unset := expand(raw, opts)
	switch {
	case problem != "":
		bad(field, "%s", problem)
	case unset != "":
		warn(field, unset)
	case u == "": // the schema reports it
	default:
		if msg := checkURL(u, schemes...); msg != "" {
			bad(field, "%s", msg)
		}
	}
	return u
}

var envRef = regexp.MustCompile(`\$\{([^}]*)\}`)
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces ${VAR} from the environment. problem is an error message;
// unset is a warning message when opts.KeepUnsetVars let an unset VAR pass.
func expand(s string, opts Options) (out, problem, unset string) {
	var missing []string
	out = envRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		if !envName.MatchString(name) {
			if problem == "" {
				problem = fmt.Sprintf("%q is not a valid ${VAR} reference", ref)
			}
			return ref
		}
		v, ok := opts.Getenv(name)
		if !ok {
			missing = append(missing, name)
			return ref
		}
		return v
	})
	if problem != "" || len(missing) == 0 {
		return out, problem, ""
	}
	msg := fmt.Sprintf("environment variable %s is not set", strings.Join(missing, ", "))
	if opts.KeepUnsetVars {
		return out, "", msg + "; it must be set for plan and apply"
	}
	return out, msg + ": export it before running dbops", ""
}

// checkURL checks a URL's form without showing its password.
func checkURL(raw string, schemes ...string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Sprintf("%s is not a valid URL", Redact(raw))
	}
	if !slices.Contains(schemes, u.Scheme) {
		return fmt.Sprintf("%s: scheme must be %s://", Redact(raw), strings.Join(schemes, ":// or "))
	}
	if u.Scheme != "unix" && u.Host == "" {
		return fmt.Sprintf("%s: no host", Redact(raw))
	}
	return ""
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
	checkMigrationSet(m, bad)
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

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
