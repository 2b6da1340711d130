package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/minio/minio-go/v7"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/spec"
)

// s3Dest returns an s3:// destination under a prefix of its own on the
// shared S3 server, with the server's credentials.
// destSeq numbers the destinations s3Dest hands out.
var destSeq atomic.Int64

func s3Dest(t *testing.T) (*testsrv.S3, string, *spec.S3) {
	t.Helper()
	srv := testsrv.SharedS3(t)
	// The server is shared by the package: a prefix per call keeps runs
	// of -count=N apart.
	prefix := strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(t.Name()), "-"), "-") +
		fmt.Sprintf("-%d", destSeq.Add(1))
	return srv, "s3://" + srv.Bucket + "/tests/" + prefix, &spec.S3{Endpoint: srv.Endpoint, Region: "us-east-1", PathStyle: true,
		AccessKeyID: "${K}", SecretAccessKey: "${S}", AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
}

// objects lists the keys under the destination's prefix, and the keys of
// unfinished multipart uploads there.
func objects(t *testing.T, srv *testsrv.S3, dest string) (keys, uploads []string) {
	t.Helper()
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	_, prefix, _ := spec.ParseS3Destination(dest)
	ctx := testCtx(t)
	for o := range c.ListObjects(ctx, srv.Bucket, minio.ListObjectsOptions{Prefix: prefix + "/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, strings.TrimPrefix(o.Key, prefix+"/"))
	}
	for u := range c.ListIncompleteUploads(ctx, srv.Bucket, prefix+"/", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		uploads = append(uploads, u.Key)
	}
	return keys, uploads
}

// getObject reads a whole object (small test objects only).
func getObject(t *testing.T, srv *testsrv.S3, dest, name string) []byte {
	t.Helper()
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	_, prefix, _ := spec.ParseS3Destination(dest)
	o, err := c.GetObject(testCtx(t), srv.Bucket, prefix+"/"+name, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeIdentity(t *testing.T, id *age.X25519Identity) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "identity.txt")
	if err := os.WriteFile(p, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// One Postgres job on object storage, plain and age-encrypted: upload,
// listing with manifests beside the objects, verification streamed back
// (restore into a scratch database), retention deleting objects, and
// dbops restore, with the credentials nowhere in the output.
func TestS3PostgresBackupListPruneRestore(t *testing.T) {
	src := testsrv.PostgresDB(t)
	execSQL(t, src, shopSQL)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := age.GenerateX25519Identity()
	for _, c := range []struct {
		name       string
		recipients []string
	}{
		{"plain", nil},
		{"age", []string{id.Recipient().String()}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := testCtx(t)
			srv, dest, s3cfg := s3Dest(t)
			var logs bytes.Buffer
			job := pgJob(t, src, VerifyRestore)
			job.Destination, job.S3, job.Recipients, job.Retention = dest, s3cfg, c.recipients, Retention{KeepLast: 1}
			opts := Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), IdentityFile: writeIdentity(t, id)}
			start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
			var ms []Manifest
			for i := range 3 {
				now := start.Add(time.Duration(i) * time.Hour)
				opts.Now = func() time.Time { return now }
				m, err := Run(ctx, job, opts)
				if err != nil {
					t.Fatal(err)
				}
				ms = append(ms, m)
			}
			m := ms[2]
			v := m.Verification
			if !v.OK || !strings.Contains(v.Detail, "archive read in full") || !strings.Contains(v.Detail, "counts match") {
				t.Fatalf("verification %+v", v)
			}
			if m.ETag == "" || m.Size == 0 {
				t.Errorf("manifest %+v", m)
			}
			keys, uploads := objects(t, srv, dest)
			if len(keys) != 6 || len(uploads) != 0 {
				t.Fatalf("objects %v, unfinished uploads %v", keys, uploads)
			}
			raw := getObject(t, srv, dest, m.File)
			if int64(len(raw)) != m.Size {
				t.Fatalf("object is %d bytes, manifest %d", len(raw), m.Size)
			}
			manifest := getObject(t, srv, dest, ManifestName(m.File))
			if c.recipients != nil {
				if m.Encryption == nil || m.Encryption.Recipients[0] != c.recipients[0] || m.PlainSize == 0 || !bytes.HasPrefix(raw, []byte("age-encryption.org/v1")) {
					t.Fatalf("encrypted manifest %+v, object starts %q", m, raw[:min(40, len(raw))])
				}
				if bytes.Contains(raw, []byte("PGDMP")) || bytes.Contains(manifest, []byte("AGE-SECRET-KEY")) {
					t.Error("the object holds plaintext or the manifest holds the identity")
				}
			} else if !bytes.HasPrefix(raw, []byte("PGDMP")) || m.Encryption != nil {
				t.Errorf("plain object starts %q, encryption %+v", raw[:min(10, len(raw))], m.Encryption)
			}

			// Listing: three counted backups; retention keeps the newest.
			bs, err := ListChecked(ctx, dest, job)
			if err != nil || len(counted(bs)) != 3 {
				t.Fatalf("list: %v %+v", err, bs)
			}
			if bs[0].File != dest+"/"+m.File {
				t.Errorf("listed file %q", bs[0].File)
			}
			obs, err := Observe(ctx, job, start.Add(3*time.Hour))
			if err != nil || len(obs.Delete) != 2 || obs.Last == nil || obs.Last.Manifest.File != m.File {
				t.Fatalf("observe: %v %+v", err, obs)
			}
			for _, d := range obs.Delete {
				if err := Delete(d); err != nil {
					t.Fatal(err)
				}
			}
			if keys, _ := objects(t, srv, dest); len(keys) != 2 {
				t.Fatalf("after pruning: %v", keys)
			}
			bs, _ = List(dest, job)
			if len(bs) != 1 || !bs[0].Counted {
				t.Fatalf("after pruning: %+v", bs)
			}

			// Restore, streamed from the bucket.
			dst := testsrv.PostgresDB(t)
			rep, err := RestoreBackup(ctx, bs[0], dst, false, opts)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Rows != 22505 || len(rep.Mismatches) != 0 || fingerprint(t, dst) != fingerprint(t, src) {
				t.Fatalf("restored: %+v", rep)
			}
			if c.recipients != nil {
				// Without an identity, or with the wrong one: a clear
				// error naming the job, and nothing restored.
				t.Setenv("DBOPS_AGE_IDENTITY_FILE", "")
				t.Setenv("DBOPS_AGE_IDENTITY", "")
				empty := testsrv.PostgresDB(t)
				_, err := RestoreBackup(ctx, bs[0], empty, false, Options{})
				if !errors.Is(err, ErrNoIdentity) || !strings.Contains(err.Error(), "shop/pg") || !strings.Contains(err.Error(), "--identity-file") {
					t.Errorf("restore without identity: %v", err)
				}
				_, err = RestoreBackup(ctx, bs[0], empty, false, Options{IdentityFile: writeIdentity(t, other)})
				if err == nil || !strings.Contains(err.Error(), "does not decrypt") || !strings.Contains(err.Error(), "shop/pg") {
					t.Errorf("restore with the wrong identity: %v", err)
				}
				if n := scalar(t, empty, "SELECT count(*) FROM pg_tables WHERE schemaname = 'shop'"); n != "0" {
					t.Errorf("a refused restore created %s tables", n)
				}
				// A backup run without the identity is kept but not counted.
				job.Verify = VerifyRead
				m, err := Run(ctx, job, Options{})
				var verr *VerifyError
				if !errors.As(err, &verr) || !strings.Contains(m.Verification.Error, "identity") {
					t.Errorf("run without identity: %v %+v", err, m.Verification)
				}
			}
			for _, secret := range []string{srv.SecretKey, srv.AccessKey, spec.Password(src)} {
				for what, s := range map[string]string{"logs": logs.String(), "manifest": string(manifest), "report": rep.String()} {
					if strings.Contains(s, secret) {
						t.Errorf("the %s hold a credential", what)
					}
				}
			}
		})
	}
}

func TestS3RedisBackupVerifyRestore(t *testing.T) {
	ctx := testCtx(t)
	srv := testsrv.NewRedis(t, testsrv.RedisOptions{})
	n0, n1 := fillRedis(t, srv.URL())
	_, dest, s3cfg := s3Dest(t)
	id, _ := age.GenerateX25519Identity()
	job := redisJob(t, srv.URL())
	job.Destination, job.S3, job.Recipients = dest, s3cfg, []string{id.Recipient().String()}
	opts := Options{IdentityFile: writeIdentity(t, id)}
	m, err := Run(ctx, job, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Verification.Detail, fmt.Sprintf("%d keys read up to the EOF opcode", n0+n1)) || m.Encryption == nil {
		t.Fatalf("manifest %+v", m)
	}
	bs, err := ListChecked(ctx, dest, job)
	if err != nil || len(counted(bs)) != 1 {
		t.Fatalf("list: %v %+v", err, bs)
	}
	info, err := CheckRedisBackup(ctx, bs[0], opts)
	if err != nil || info.Keys != n0+n1 {
		t.Fatalf("CheckRedisBackup: %+v %v", info, err)
	}
	dst := testsrv.NewRedis(t, testsrv.RedisOptions{ConfigFile: true})
	to := RedisRestoreTarget{URL: dst.URL(), Dir: dst.Dir, Start: func(ctx context.Context) error {
		if err := dst.WaitExit(30 * time.Second); err != nil {
			return err
		}
		return dst.Start(ctx)
	}}
	rep, err := RestoreRedisBackup(ctx, bs[0], to, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.KeysInFile != n0+n1 || rep.Backup != m.File {
		t.Errorf("report %+v", rep)
	}
	if got, _ := redisClient(t, dst.URL(), 0).DBSize(ctx).Result(); got != n0 {
		t.Errorf("restored db0 has %d keys, want %d", got, n0)
	}
}

// helperCmd starts a child test process that takes one backup of job
// (see helperBackup), to be killed.
func helperCmd(t *testing.T, job Job) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", "DBOPS_HELPER_DIR="+job.Destination, "DBOPS_HELPER_URL="+job.PostgresURL,
		"DBOPS_HELPER_S3="+job.S3.Endpoint+" "+job.S3.AccessKey+" "+job.S3.SecretKey)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// An upload interrupted half-way (the run cancelled, or the process
// killed) leaves no listed object; the parts are aborted at once, or by
// the next run after a kill.
func TestS3UploadInterrupted(t *testing.T) {
	src := bigDB(t)
	srv, dest, s3cfg := s3Dest(t)
	job := Job{Stack: "shop", Name: "big", Source: SourcePostgres, Destination: dest, S3: s3cfg, PostgresURL: src, Verify: VerifyRead}

	waitUpload := func(done <-chan struct{}) {
		t.Helper()
		for {
			if _, ups := objects(t, srv, dest); len(ups) > 0 {
				return
			}
			select {
			case <-done:
				t.Fatal("the backup ended before it could be interrupted")
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan struct{})
	var runErr error
	go func() { _, runErr = Run(ctx, job, Options{}); close(done) }()
	waitUpload(done)
	cancel()
	<-done
	if runErr == nil {
		t.Fatal("a cancelled run succeeded")
	}
	keys, ups := objects(t, srv, dest)
	if len(keys) != 0 || len(ups) != 0 {
		t.Fatalf("after cancel: objects %v, unfinished uploads %v", keys, ups)
	}

	// SIGKILL: the unfinished upload stays (nothing listed); the next run
	// aborts it and succeeds.
	cmd := helperCmd(t, job)
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	waitUpload(exited)
	cmd.Process.Kill()
	<-exited
	if bs, err := List(dest, job); err != nil || len(bs) != 0 {
		t.Fatalf("a killed run left a listed backup: %v %+v", err, bs)
	}
	m, err := Run(testCtx(t), job, Options{})
	if err != nil {
		t.Fatal(err)
	}
	keys, ups = objects(t, srv, dest)
	if len(keys) != 2 || len(ups) != 0 {
		t.Fatalf("after the next run: objects %v, unfinished uploads %v", keys, ups)
	}
	if bs, _ := List(dest, job); len(bs) != 1 || !bs[0].Counted || bs[0].Manifest.File != m.File {
		t.Fatalf("after the next run: %+v", bs)
	}
}

// Wrong credentials: a clear error that says what to check and holds
// neither key; nothing is uploaded.
func TestS3WrongCredentials(t *testing.T) {
	src := testsrv.PostgresDB(t)
	execSQL(t, src, "CREATE TABLE t (id int)")
	srv, dest, s3cfg := s3Dest(t)
	for _, c := range []struct{ name, key, secret string }{
		{"secret", srv.AccessKey, "wrong-Secret-0123456789"},
		{"key", "NOSUCHKEY0123", "wrong-Secret-0123456789"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := *s3cfg
			cfg.AccessKey, cfg.SecretKey = c.key, c.secret
			var logs bytes.Buffer
			job := Job{Stack: "shop", Name: "pg", Source: SourcePostgres, Destination: dest, S3: &cfg, PostgresURL: src}
			_, err := Run(testCtx(t), job, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err == nil || !strings.Contains(err.Error(), "check the job's s3.accessKeyId/secretAccessKey") || !strings.Contains(err.Error(), dest) {
				t.Fatalf("run with wrong credentials: %v", err)
			}
			t.Log(err)
			_, listErr := List(dest, job)
			for _, s := range []string{c.secret, c.key} {
				if strings.Contains(err.Error(), s) || strings.Contains(logs.String(), s) || (listErr != nil && strings.Contains(listErr.Error(), s)) {
					t.Errorf("a credential is printed: %v / %v / %s", err, listErr, logs.String())
				}
			}
			if keys, ups := objects(t, srv, dest); len(keys) != 0 || len(ups) != 0 {
				t.Errorf("objects %v, uploads %v", keys, ups)
			}
		})
	}
}
