package main_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
)

// restore --backup ID refuses a backup that failed its checks (here a
// checksum mismatch), as it does without --backup: only verified backups
// are restored.
func TestRestoreBackupIDMustBeVerified(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{})
	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	dest := t.TempDir()
	f.Write(t, "stack.yaml", clitest.BackupStack(dest, ""))
	f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
	for _, args := range [][]string{{"apply", "--auto-approve", "stack.yaml"}, {"backup", "run", "shop/pg", "stack.yaml"}} {
		if res := f.Run(t, args...); res.Code != 0 {
			t.Fatalf("dbops %s: exit %d\n%s%s", strings.Join(args, " "), res.Code, res.Stdout, res.Stderr)
		}
	}
	list := f.Run(t, "backup", "list", "shop/pg", "--format", "json", "stack.yaml")
	var jobs []struct {
		Backups []struct {
			ID, File string
			Counted  bool
		}
	}
	if err := json.Unmarshal([]byte(list.Stdout), &jobs); err != nil || len(jobs) != 1 || len(jobs[0].Backups) == 0 || !jobs[0].Backups[0].Counted {
		t.Fatalf("backup list: exit %d, %v\n%s%s", list.Code, err, list.Stdout, list.Stderr)
	}
	b := jobs[0].Backups[0] // newest first
	fh, err := os.OpenFile(b.File, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteString("x"); err != nil {
		t.Fatal(err)
	}
	fh.Close()

	target := testsrv.PostgresDB(t)
	res := f.Run(t, "restore", "shop/pg", "--backup", b.ID, "--to-url", target, "stack.yaml")
	if res.Code != 1 || !strings.Contains(res.Stderr, b.ID) {
		t.Errorf("restore --backup %s of a corrupted backup: exit %d, want 1 naming it\n%s%s", b.ID, res.Code, res.Stdout, res.Stderr)
	}
}
