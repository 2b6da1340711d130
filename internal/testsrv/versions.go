package testsrv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// EnvVersionsFile, when set, names a file that Main appends its
// versions line to, so a matrix run can show what each package covered
// (go test hides a passing package's output).
const EnvVersionsFile = "DBOPS_TEST_VERSIONS_FILE"

// useClientBins puts $DBOPS_TEST_PG_CLIENT_BIN and $DBOPS_TEST_REDIS_BIN
// first on PATH, so pg_dump, pg_restore, psql and redis-cli are the
// versions under test, for the tests and the dbops processes they start.
func useClientBins() {
	var dirs []string
	for _, env := range []string{EnvPostgresClient, EnvRedisBin} {
		if d := os.Getenv(env); d != "" {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) > 0 {
		os.Setenv("PATH", strings.Join(append(dirs, os.Getenv("PATH")), string(os.PathListSeparator)))
	}
}

// Versions describes the server and client binaries the tests use, in
// one line: "postgres 18.4 (/dir), pg_dump 18.6 (/dir/pg_dump), ...".
func Versions() string {
	var parts []string
	add := func(name, path string, err error) {
		if err != nil {
			parts = append(parts, name+" not found")
			return
		}
		parts = append(parts, fmt.Sprintf("%s %s (%s)", name, binVersion(path), path))
	}
	dir, err := FindPostgresBin()
	add("postgres", filepath.Join(dir, "postgres"), err)
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		p, err := exec.LookPath(tool)
		add(tool, p, err)
	}
	p, err := FindRedisServer()
	add("redis-server", p, err)
	return strings.Join(parts, ", ")
}

// binVersion runs `bin --version` and keeps the version number.
func binVersion(bin string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return "(--version failed)"
	}
	for _, f := range strings.Fields(string(out)) {
		f = strings.TrimPrefix(f, "v=") // redis-server: "Redis server v=8.0.6 sha=..."
		if f != "" && f[0] >= '0' && f[0] <= '9' && strings.Contains(f, ".") {
			return f
		}
	}
	return strings.TrimSpace(string(out))
}

// announce prints the versions under test at the start of a package's
// run, to stderr (helper child processes speak on stdout), once: test
// binaries re-run as children inherit the guard variable.
func announce() {
	const guard = "DBOPS_TEST_VERSIONS_ANNOUNCED"
	if os.Getenv(guard) != "" {
		return
	}
	os.Setenv(guard, "1")
	versions := Versions()
	fmt.Fprintln(os.Stderr, "testsrv: versions under test: "+versions)
	if f := os.Getenv(EnvVersionsFile); f != "" {
		pkg, _ := os.Getwd()
		if fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(fh, "%s: %s\n", filepath.Base(pkg), versions)
			fh.Close()
		}
	}
}
