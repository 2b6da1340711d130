package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
)

// A backup whose file no longer matches its checksum is not shown as
// verified: its verification no longer holds.
func TestBackupListVoidVerification(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	f.Env["PG_URL"] = pgURL
	dest := t.TempDir()
	f.Write(t, "stack.yaml", clitest.StackYAML("shop", `  postgres:
    url: ${PG_URL}
    migrations: {dir: ./migrations}
  backups:
    - {name: pg, source: postgres, schedule: "@daily", destination: `+dest+`, retention: {keepLast: 3}}
`))
	if res := f.Run(t, "backup", "run", "-f", "stack.yaml", "shop/pg"); res.Code != 0 {
		t.Fatalf("backup run: %+v", res)
	}
	res := f.Run(t, "backup", "list", "-f", "stack.yaml")
	if !strings.Contains(res.Stdout, "  yes  ") || !strings.Contains(res.Stdout, "read") {
		t.Fatalf("list of a good backup:\n%s%s", res.Stdout, res.Stderr)
	}
	files, _ := filepath.Glob(filepath.Join(dest, "shop-pg-*.dump"))
	if len(files) != 1 {
		t.Fatalf("backup files %v", files)
	}
	b, _ := os.ReadFile(files[0])
	b[len(b)/2] ^= 0xff // same size, other checksum
	os.WriteFile(files[0], b, 0o644)
	res = f.Run(t, "backup", "list", "-f", "stack.yaml")
	line := ""
	for _, l := range strings.Split(res.Stdout, "\n") {
		if strings.HasPrefix(l, "shop/pg") {
			line = l
		}
	}
	if !strings.Contains(line, "VOID (was read)") || strings.Contains(strings.ReplaceAll(line, "(was read)", ""), " read ") {
		t.Errorf("a backup whose checksum no longer matches is shown as verified:\n%s", res.Stdout)
	}
}
