package backup

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amanat/dbops/internal/testsrv"
)

// stuckDump stands in for a pg_dump that never finishes (blocked on a lock
// or a slow server): it answers --version, then sleeps for a marked time.
const stuckDump = `#!/bin/sh
case "$1" in --version) echo "pg_dump (PostgreSQL) 99.0"; exit 0;; esac
exec sleep 4242.4242
`

// stuckDumps counts the running stand-ins.
func stuckDumps() int {
	n := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), "4242.4242") {
			n++
		}
	}
	return n
}

// After kill -9 of dbops during a backup, its pg_dump must not run on as an
// orphan; the temporary file left is listed as incomplete.
func TestPgDumpDiesWithDbops(t *testing.T) {
	src := testsrv.PostgresDB(t)
	bin := filepath.Join(t.TempDir(), "pg_dump")
	if err := os.WriteFile(bin, []byte(stuckDump), 0o755); err != nil {
		t.Fatal(err)
	}
	// helperBackup takes a backup of job shop/big.
	job := Job{Stack: "shop", Name: "big", Source: SourcePostgres, Destination: t.TempDir(), PostgresURL: src}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", "DBOPS_HELPER_DIR="+job.Destination, "DBOPS_HELPER_URL="+src, "DBOPS_HELPER_PG_DUMP="+bin)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill() })
	deadline := time.Now().Add(time.Minute)
	for stuckDumps() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("pg_dump never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	<-exited
	deadline = time.Now().Add(10 * time.Second)
	for stuckDumps() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("pg_dump still runs 10 s after dbops was killed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	inc := Incomplete(job.Destination, job)
	if len(inc) != 1 || !strings.HasPrefix(inc[0].Reason, "incomplete") {
		t.Errorf("incomplete backups after the kill: %+v (temp files %v)", inc, tempFiles(job.Destination, job))
	}
}
