package testsrv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Environment variables naming the binaries under test (the version
// matrix, scripts/matrix.sh, sets them). Unset: the machine's own.
const (
	EnvPostgresBin    = "DBOPS_TEST_PG_BIN"        // folder of initdb, pg_ctl, postgres
	EnvPostgresClient = "DBOPS_TEST_PG_CLIENT_BIN" // folder of pg_dump, pg_restore, psql
	EnvRedisBin       = "DBOPS_TEST_REDIS_BIN"     // folder of redis-server
)

// FindPostgresBin returns the folder holding initdb, pg_ctl and postgres:
// $DBOPS_TEST_PG_BIN when set (and then only there); otherwise it looks on
// PATH, then at `pg_config --bindir`, then at /usr/lib/postgresql/*/bin
// and /usr/pgsql-*/bin (highest version first).
func FindPostgresBin() (string, error) {
	if dir := os.Getenv(EnvPostgresBin); dir != "" {
		if !hasPostgresBins(dir) {
			return "", fmt.Errorf("testsrv: %s=%s does not hold executable initdb, pg_ctl and postgres", EnvPostgresBin, dir)
		}
		return dir, nil
	}
	var tried []string
	try := func(dir string) bool {
		if dir == "" {
			return false
		}
		tried = append(tried, dir)
		return hasPostgresBins(dir)
	}
	for _, name := range []string{"initdb", "postgres"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		// Prefer the real folder when PATH holds symlinks to the binaries.
		if real, err := filepath.EvalSymlinks(p); err == nil && try(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
		if try(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.Command(pgConfig, "--bindir").Output(); err == nil {
			if dir := strings.TrimSpace(string(out)); try(dir) {
				return dir, nil
			}
		}
	}
	for _, dir := range versionedBinDirs() {
		if try(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("testsrv: PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; looked on PATH, via pg_config and in %s", strings.Join(append(tried, "/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"), ", "))
}

// FindRedisServer returns the path of redis-server: in $DBOPS_TEST_REDIS_BIN
// when set, otherwise on PATH.
func FindRedisServer() (string, error) {
	if dir := os.Getenv(EnvRedisBin); dir != "" {
		p := filepath.Join(dir, "redis-server")
		if !isExecutable(p) {
			return "", fmt.Errorf("testsrv: %s=%s does not hold an executable redis-server", EnvRedisBin, dir)
		}
		return p, nil
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("testsrv: redis-server not found on PATH: %w", err)
	}
	return p, nil
}

func hasPostgresBins(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		if !isExecutable(filepath.Join(dir, name)) {
			return false
		}
	}
	return true
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// versionedBinDirs lists the bin folders of installed PostgreSQL versions,
// highest version first.
func versionedBinDirs() []string {
	type cand struct {
		dir string
		ver []int
	}
	var cands []cand
	for _, pattern := range []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"} {
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			v := filepath.Base(filepath.Dir(m))
			v = strings.TrimPrefix(v, "pgsql-")
			ver, err := parseVersion(v)
			if err != nil {
				continue
			}
			cands = append(cands, cand{m, ver})
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return versionLess(cands[j].ver, cands[i].ver) })
	dirs := make([]string, len(cands))
	for i, c := range cands {
		dirs[i] = c.dir
	}
	return dirs
}

func parseVersion(s string) ([]int, error) {
	var ver []int
	for _, part := range strings.Split(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			return nil, errors.New("not a version")
		}
		ver = append(ver, n)
	}
	return ver, nil
}

func versionLess(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}
