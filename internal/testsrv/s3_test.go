package testsrv

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// Several weed servers start at once (as test binaries of different
// packages do) without fighting over ports, each serving its own bucket,
// and refuse a wrong secret.
func TestS3ServersInParallel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts S3 servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srvs := make([]*S3, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range srvs {
		wg.Go(func() { srvs[i], errs[i] = StartS3(ctx) })
	}
	wg.Wait()
	for i, s := range srvs {
		if s != nil {
			defer s.Stop()
		}
		if errs[i] != nil {
			t.Fatalf("server %d: %v", i, errs[i])
		}
	}
	for i, s := range srvs {
		c, err := s.Client()
		if err != nil {
			t.Fatal(err)
		}
		body := strings.Repeat("x", i+1)
		if _, err := c.PutObject(ctx, s.Bucket, "k", strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
			t.Fatalf("server %d: put: %v", i, err)
		}
		o, err := c.GetObject(ctx, s.Bucket, "k", minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(o)
		if err != nil || !bytes.Equal(got, []byte(body)) {
			t.Errorf("server %d: got %q %v, want %q", i, got, err, body)
		}
		bad := &S3{Port: s.Port, AccessKey: s.AccessKey, SecretKey: "wrong"}
		bc, _ := bad.Client()
		if _, err := bc.BucketExists(ctx, s.Bucket); err == nil {
			t.Errorf("server %d accepts a wrong secret", i)
		}
	}
}
