package main_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
)

// plan shows the PostgreSQL server's version, as it shows Redis's, and warns
// when a due Postgres backup's pg_dump is older than the server (found at
// plan time, not when the backup runs).
func TestPlanShowsServerVersionAndOldPgDump(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	f.Write(t, "stack.yaml", clitest.BackupStack(t.TempDir(), ""))
	f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
	// No pg_dump older than the test server is installed here: this one
	// only answers --version as PostgreSQL 9.6's does (all plan runs).
	old := filepath.Join(t.TempDir(), "pg_dump")
	if err := os.WriteFile(old, []byte("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		args   []string
		warned bool
	}{
		{"pg_dump on PATH, as new as the server", nil, false},
		{"pg_dump 9.6", []string{"--pg-dump", old}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := f.Run(t, append([]string{"plan", "stack.yaml"}, tc.args...)...)
			if res.Code != 0 {
				t.Fatalf("exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
			}
			if !regexp.MustCompile(`postgres \S+ \(PostgreSQL \d+\.\d+\): migration`).MatchString(res.Stdout) {
				t.Errorf("no server version on the postgres line:\n%s", res.Stdout)
			}
			warned := strings.Contains(res.Stdout, "warning: backup pg is due but will fail: "+old+" is PostgreSQL 9.6 but the server")
			if warned != tc.warned {
				t.Errorf("warned %v, want %v:\n%s", warned, tc.warned, res.Stdout)
			}
		})
	}
	res := f.Run(t, "plan", "--format", "json", "stack.yaml")
	if !regexp.MustCompile(`"serverVersionNum": \d{5,}`).MatchString(res.Stdout) {
		t.Errorf("JSON plan lacks serverVersionNum:\n%s", res.Stdout)
	}
}
