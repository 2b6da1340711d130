package spec

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// A URL field may reference secrets:
//   ${VAR}         the environment variable VAR; unset or empty is an error
//                  (a warning for offline validation), never an empty URL
//   ${file:PATH}   the content of PATH (a Docker or Kubernetes secret),
//                  read at load time, trailing newlines trimmed; a relative
//                  PATH resolves against the YAML file's folder.
// Every expanded value is registered with RegisterSecrets.

var envRef = regexp.MustCompile(`\$\{([^}]*)\}`)
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// maxSecretFile bounds a secret file: a connection string, not a dump.
const maxSecretFile = 64 << 10

// expansion is the outcome of expanding one field.
type expansion struct {
	out     string
	problem string // an error message
	unset   string // a warning when opts.KeepUnsetVars let a missing value pass
}

// expand replaces ${VAR} and ${file:PATH} references in s.
func expand(s, specFile string, opts Options) expansion {
	var e expansion
	var missing []string
	e.out = envRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		if path, ok := strings.CutPrefix(name, "file:"); ok {
			v, gone, err := readSecretFile(path, specFile)
			switch {
			case gone && opts.KeepUnsetVars:
				if e.unset == "" {
					e.unset = err.Error() + "; it must exist for plan and apply"
				}
				return ref
			case err != nil:
				if e.problem == "" {
					e.problem = err.Error()
				}
				return ref
			}
			RegisterSecrets(v)
			return v
		}
		if !envName.MatchString(name) {
			if e.problem == "" {
				e.problem = fmt.Sprintf("%q is not a valid ${VAR} or ${file:PATH} reference", ref)
			}
			return ref
		}
		v, ok := opts.Getenv(name)
		if !ok || v == "" {
			missing = append(missing, name)
			return ref
		}
		return v
	})
	if e.problem != "" || len(missing) == 0 {
		return e
	}
	msg := fmt.Sprintf("environment variable %s is not set or empty", strings.Join(missing, ", "))
	if opts.KeepUnsetVars {
		if e.unset == "" {
			e.unset = msg + "; it must be set for plan and apply"
		}
		return e
	}
	e.problem = msg + ": export it before running dbops"
	return e
}

// readSecretFile reads a ${file:PATH} secret. gone is true when the file
// does not exist (treated like an unset variable by offline validation).
func readSecretFile(path, specFile string) (value string, gone bool, err error) {
	if path == "" {
		return "", false, errors.New("${file:} needs a path, e.g. ${file:/run/secrets/pg_url}")
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(specFile), path)
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", true, fmt.Errorf("secret file %s does not exist", path)
		}
		return "", false, fmt.Errorf("secret file %s cannot be read: %s", path, pathErr(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", false, fmt.Errorf("secret file %s cannot be read: %s", path, pathErr(err))
	}
	if len(b) > maxSecretFile {
		return "", false, fmt.Errorf("secret file %s is larger than %d KiB", path, maxSecretFile>>10)
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return "", false, fmt.Errorf("secret file %s is empty", path)
	}
	return v, false, nil
}

// pathErr is the reason of a file error without repeating the path.
func pathErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// expandCredential expands a credential field (a ${VAR} or ${file:PATH}
// reference) and registers the value as a secret; ok is false when it was
// reported as an error or a warning instead.
func expandCredential(raw, field, specFile string, opts Options, bad func(field, format string, args ...any),
	warn func(field, msg string)) (value string, ok bool) {
	if !envOnly.MatchString(raw) {
		bad(field, "must be a ${VAR} or ${file:PATH} reference: credentials are not written in the repository")
		return "", false
	}
	e := expand(raw, specFile, opts)
	switch {
	case e.problem != "":
		bad(field, "%s", e.problem)
	case e.unset != "":
		warn(field, e.unset)
	default:
		RegisterSecrets(e.out) // masked wherever dbops prints
		return e.out, true
	}
	return "", false
}

// expandURL expands a URL field, registers what it holds as secrets and
// checks its form with parse; an unset variable is a warning when
// opts.KeepUnsetVars allows it.
func expandURL(raw, field, specFile string, opts Options, bad func(field, format string, args ...any),
	warn func(field, msg string), parse func(string) error) string {
	e := expand(raw, specFile, opts)
	if e.problem == "" && e.unset == "" {
		RegisterSecrets(Secrets(e.out)...)
	}
	switch {
	case e.problem != "":
		bad(field, "%s", e.problem)
	case e.unset != "":
		warn(field, e.unset)
	case e.out == "": // the schema reports it
	default:
		if err := parse(e.out); err != nil {
			bad(field, "%s", err.Error())
		}
	}
	return e.out
}

func checkPostgresURL(raw string) error { _, err := ParsePostgres(raw); return err }
func checkRedisURL(raw string) error    { _, err := ParseRedis(raw); return err }
