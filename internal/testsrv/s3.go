package testsrv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// SeaweedFSVersion is the SeaweedFS module scripts/ensure-seaweedfs.sh
// builds `weed` from.
const SeaweedFSVersion = "v0.0.0-20261109003541-7506e5f91cd6"

// EnvWeed names the `weed` binary to use; unset: the cache folder
// scripts/ensure-seaweedfs.sh builds into, then PATH.
const EnvWeed = "DBOPS_WEED"

// FindWeed returns the path of SeaweedFS's weed binary.
func FindWeed() (string, error) {
	if p := os.Getenv(EnvWeed); p != "" {
		if !isExecutable(p) {
			return "", fmt.Errorf("testsrv: %s=%s is not an executable weed", EnvWeed, p)
		}
		return p, nil
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache")
		}
	}
	if p := filepath.Join(cache, "dbops", "seaweedfs-"+SeaweedFSVersion, "weed"); cache != "" && isExecutable(p) {
		return p, nil
	}
	if p, err := exec.LookPath("weed"); err == nil {
		return p, nil
	}
	return "", errors.New("testsrv: SeaweedFS weed (the S3 server of the object-storage tests) not found: run scripts/ensure-seaweedfs.sh (make test does), or set " + EnvWeed)
}

// S3 is a throwaway SeaweedFS `weed mini` serving S3 on 127.0.0.1, with
// one identity and one bucket.
type S3 struct {
	Endpoint  string // http://127.0.0.1:port
	Port      int
	AccessKey string
	SecretKey string
	Bucket    string
	Dir       string

	mu      sync.Mutex
	proc    *proc
	stopped bool
}

// StartS3 starts `weed mini` in a fresh temp dir with its S3 API on a free
// port of 127.0.0.1, creates the bucket and waits until it answers.
func StartS3(ctx context.Context) (*S3, error) {
	bin, err := FindWeed()
	if err != nil {
		return nil, err
	}
	dir, err := makeDir("testsrv-s3-", nil)
	if err != nil {
		return nil, err
	}
	s := &S3{AccessKey: "dbops" + randHex(6), SecretKey: randHex(20), Bucket: "dbops-test", Dir: dir}
	cfg := map[string]any{"identities": []any{map[string]any{
		"name":        "dbops",
		"credentials": []any{map[string]string{"accessKey": s.AccessKey, "secretKey": s.SecretKey}},
		"actions":     []string{"Admin", "Read", "Write", "List", "Tagging"},
	}}}
	b, _ := json.Marshal(cfg)
	conf := filepath.Join(dir, "s3.json")
	if err := os.WriteFile(conf, b, 0o600); err != nil {
		s.Stop()
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		s.Port, err = freeS3Port()
		if err == nil {
			err = s.start(ctx, bin, conf)
		}
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortInUse) || attempt == startAttempts {
			s.Stop()
			return nil, err
		}
	}
}

// freeS3Port returns a free port whose gRPC companion (port+10000, weed's
// convention) is free and valid too.
func freeS3Port() (int, error) {
	for i := 0; i < 20; i++ {
		p, err := freePort()
		if err != nil {
			return 0, err
		}
		if p+10000 > 65535 {
			continue
		}
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000)); err == nil {
			l.Close()
			return p, nil
		}
	}
	return 0, errors.New("testsrv: no free port pair for weed's S3 and gRPC")
}

func (s *S3) start(ctx context.Context, bin, conf string) error {
	data := filepath.Join(s.Dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	args := []string{"mini", "-dir=" + data, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-s3.port=" + strconv.Itoa(s.Port), "-s3.config=" + conf, "-s3.port.iceberg=0", "-s3.port.lance=0",
		"-webdav=false", "-admin.ui=false", "-admin.port.legacy=0", "-master.telemetry=false", "-master.volumeSizeLimitMB=64"}
	// Every other service on a free port too (weed's defaults are fixed
	// numbers, which test binaries running at once would race for).
	for _, flag := range []string{"master.port", "volume.port", "filer.port", "admin.port"} {
		p, err := freeS3Port()
		if err != nil {
			return err
		}
		args = append(args, "-"+flag+"="+strconv.Itoa(p))
	}
	pr, err := startProc(bin, args, s.Dir, filepath.Join(s.Dir, "weed.log"), nil)
	if err != nil {
		return err
	}
	s.proc = pr
	s.Endpoint = "http://127.0.0.1:" + strconv.Itoa(s.Port)
	c, err := s.Client()
	if err != nil {
		return err
	}
	probe := func(ctx context.Context) error {
		ok, err := c.BucketExists(ctx, s.Bucket)
		if err != nil {
			return err
		}
		if !ok {
			return c.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{})
		}
		return nil
	}
	// weed mini starts a master, a volume server, a filer and the S3
	// gateway: slower than a database on 2 busy cores.
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := poll(wctx, pr, probe, 5*time.Second, 200*time.Millisecond); err != nil { // wctx, not readyTimeout, bounds it
		pr.stop(syscall.SIGTERM, 10*time.Second)
		return startError("weed mini", s.Port, pr, err)
	}
	return nil
}

// Client returns an S3 client of the server with its identity.
func (s *S3) Client() (*minio.Client, error) {
	return minio.New("127.0.0.1:"+strconv.Itoa(s.Port), &minio.Options{
		Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
}

// Stop stops the server and removes its dir. It is idempotent.
func (s *S3) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	var err error
	if s.proc != nil {
		// A throwaway server: weed's graceful stop (heartbeats, pre-stop
		// waits) takes longer than the data is worth.
		err = s.proc.stop(syscall.SIGKILL, 10*time.Second)
	}
	return errors.Join(err, os.RemoveAll(s.Dir))
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var sharedS3 struct {
	mu  sync.Mutex
	s   *S3
	err error
}

// SharedS3 returns the S3 server shared by the whole test binary (started
// on first use, stopped by Main). Each test should use its own prefix.
// A missing weed binary is a t.Fatal, never a skip (skipped with -short).
func SharedS3(t testing.TB) *S3 {
	t.Helper()
	if testing.Short() {
		t.Skip("testsrv: needs an S3 server (SeaweedFS weed); skipped with -short")
	}
	sharedS3.mu.Lock()
	defer sharedS3.mu.Unlock()
	if sharedS3.s == nil && sharedS3.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		sharedS3.s, sharedS3.err = StartS3(ctx)
		cancel()
	}
	if sharedS3.err != nil {
		t.Fatalf("shared S3 server: %v", sharedS3.err)
	}
	return sharedS3.s
}

// stopSharedS3 stops the shared S3 server, if one was started.
func stopSharedS3() error {
	sharedS3.mu.Lock()
	defer sharedS3.mu.Unlock()
	s := sharedS3.s
	sharedS3.s, sharedS3.err = nil, errors.New("testsrv: shared S3 server already stopped by Main")
	if s == nil {
		return nil
	}
	return s.Stop()
}
