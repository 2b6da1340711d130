package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/spec"
)

const helperEnv = "DBOPS_BACKUP_TEST_HELPER"

// helperBackup runs in a child process of the test binary: it takes one
// backup and is killed by the test while pg_dump streams.
func helperBackup() int {
	job := Job{Stack: "shop", Name: "big", Source: SourcePostgres, Destination: os.Getenv("DBOPS_HELPER_DIR"),
		PostgresURL: os.Getenv("DBOPS_HELPER_URL")}
	if f := strings.Fields(os.Getenv("DBOPS_HELPER_S3")); len(f) == 3 {
		job.Verify = VerifyRead
		job.S3 = &spec.S3{Endpoint: f[0], PathStyle: true, Region: "us-east-1", AccessKey: f[1], SecretKey: f[2]}
	}
	if _, err := Run(context.Background(), job, Options{PgDumpPath: os.Getenv("DBOPS_HELPER_PG_DUMP")}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// bigDB returns a database whose dump takes long enough to be interrupted
// (about 40 MB of poorly compressible rows).
func bigDB(t *testing.T) string {
	t.Helper()
	url := testsrv.PostgresDB(t)
	execSQL(t, url, `CREATE TABLE big AS SELECT g AS id,
		md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text) AS payload
		FROM generate_series(1, 600000) g`)
	return url
}

// pgDumpCmdlines returns the command line and environment of each running
// pg_dump whose command line mentions db.
func pgDumpCmdlines(db string) (cmdlines, environs []string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if err != nil || !strings.Contains(cmd, "pg_dump") || !strings.Contains(cmd, db) {
			continue
		}
		env, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "environ"))
		cmdlines = append(cmdlines, cmd)
		environs = append(environs, string(env))
	}
	return cmdlines, environs
}

func TestPostgresBackupInterrupted(t *testing.T) {
	src := bigDB(t)
	pw := spec.Password(src)
	job := Job{Stack: "shop", Name: "big", Source: SourcePostgres, Destination: t.TempDir(), PostgresURL: src}

	// 1. The run's context is cancelled while pg_dump streams: pg_dump is
	// killed, the temporary file removed, nothing is listed.
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan struct{})
	var runErr error
	go func() { _, runErr = Run(ctx, job, Options{}); close(done) }()
	waitForTemp(t, job.Destination, job, 1<<20, done)
	cmds, envs := pgDumpCmdlines(dbOf(t, src))
	if len(cmds) != 1 {
		t.Fatalf("running pg_dump processes: %q", cmds)
	}
	if strings.Contains(cmds[0], pw) || !strings.Contains(envs[0], "PGPASSWORD="+pw) {
		t.Errorf("the password must reach pg_dump through its environment only; command line: %s", cmds[0])
	}
	cancel()
	<-done
	if runErr == nil || !errors.Is(runErr, context.Canceled) {
		t.Fatalf("cancelled run: %v", runErr)
	}
	if bs, _ := List(job.Destination, job); len(bs) != 0 || len(tempFiles(job.Destination, job)) != 0 {
		t.Fatalf("after cancel: backups %+v, temp files %v", bs, tempFiles(job.Destination, job))
	}

	// 2. The whole dbops process is killed (SIGKILL): a temporary file is
	// left, never counted, and the next run removes it and works.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", "DBOPS_HELPER_DIR="+job.Destination, "DBOPS_HELPER_URL="+src)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	partial := waitForTemp(t, job.Destination, job, 1<<20, exited)
	cmd.Process.Kill()
	<-exited
	if !exists(partial) {
		t.Fatalf("expected the killed run's temporary file %s to remain", partial)
	}
	if bs, err := List(job.Destination, job); err != nil || len(bs) != 0 {
		t.Fatalf("a killed run left a listed backup: %v %+v", err, bs)
	}
	m, err := Run(testCtx(t), job, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if exists(partial) || len(tempFiles(job.Destination, job)) != 0 {
		t.Error("the next run did not remove the temporary files")
	}
	bs, _ := List(job.Destination, job)
	if len(bs) != 1 || !bs[0].Counted || bs[0].Manifest.File != m.File {
		t.Fatalf("after the next run: %+v", bs)
	}
}
