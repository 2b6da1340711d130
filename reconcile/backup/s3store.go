package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/amanat/dbops/spec"
)

// A streamed upload fills parts of partSize one after the other and sends
// up to uploadThreads of them at once, so the dump never waits for the
// network: it holds uploadThreads × partSize (48 MiB) and 10,000 parts cap
// an object at 156 GiB.
const (
	partSize      = 16 << 20
	uploadThreads = 3
	// abortTimeout bounds the clean-up of a failed upload, which runs
	// after the run's own context may have ended.
	abortTimeout = 30 * time.Second
)

// bucketStore is a job's s3://bucket/prefix: objects are named prefix/name,
// as files are in a folder.
type bucketStore struct {
	c       *minio.Client
	bucket  string
	prefix  string // "" or "a/b"
	dest    string // s3://bucket/prefix, for messages
	secrets []string
}

// openBucket connects nothing yet: it prepares the client of an s3://
// destination with the job's credentials or the standard AWS chain.
func openBucket(job Job) (*bucketStore, error) {
	bucket, prefix, err := spec.ParseS3Destination(job.Destination)
	if err != nil {
		return nil, err
	}
	cfg := job.S3
	if cfg == nil {
		cfg = &spec.S3{}
	}
	endpoint, secure := "s3.amazonaws.com", true
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("%s: endpoint %q is not a URL", job.Destination, spec.Redact(cfg.Endpoint))
		}
		endpoint, secure = u.Host, u.Scheme == "https"
	}
	var creds *credentials.Credentials
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	} else {
		// The standard AWS chain: environment, shared credentials file,
		// then the instance's or container's role.
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{}, &credentials.FileAWSCredentials{},
			&credentials.IAM{Client: &http.Client{Transport: http.DefaultTransport}},
		})
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	c, err := minio.New(endpoint, &minio.Options{Creds: creds, Secure: secure, Region: cfg.Region, BucketLookup: lookup})
	if err != nil {
		return nil, fmt.Errorf("%s: %v", job.Destination, err)
	}
	return &bucketStore{c: c, bucket: bucket, prefix: prefix, dest: "s3://" + path.Join(bucket, prefix),
		secrets: []string{cfg.AccessKey, cfg.SecretKey}}, nil
}

func (s *bucketStore) key(name string) string {
	if s.prefix == "" {
		return name
	}
	return s.prefix + "/" + name
}

func (s *bucketStore) url(name string) string { return s.dest + "/" + name }

// wrap turns a client error into one that names the destination, says
// what to do about the common ones and holds no credential.
func (s *bucketStore) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	hint := ""
	switch minio.ToErrorResponse(err).Code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken":
		hint = " (check the job's s3.accessKeyId/secretAccessKey variables or the AWS credentials chain)"
	case "NoSuchBucket":
		hint = " (create the bucket first)"
	}
	msg := spec.Scrub(err.Error(), s.secrets...)
	return &storeError{msg: fmt.Sprintf("%s: %s: %s%s", s.dest, what, msg, hint), err: err}
}

// storeError keeps the client error for errors.Is/As but prints the
// scrubbed message.
type storeError struct {
	msg string
	err error
}

func (e *storeError) Error() string { return e.msg }
func (e *storeError) Unwrap() error { return e.err }

// object is one entry of a listing.
type object struct {
	name string
	size int64
	etag string
	mod  time.Time
}

// list returns the objects directly under the prefix.
func (s *bucketStore) list(ctx context.Context) ([]object, error) {
	p := s.key("")
	var out []object
	for o := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: p}) {
		if o.Err != nil {
			if minio.ToErrorResponse(o.Err).Code == "NoSuchKey" {
				return nil, nil
			}
			return nil, s.wrap("list", o.Err)
		}
		name := strings.TrimPrefix(o.Key, p)
		if name == "" || strings.Contains(name, "/") {
			continue
		}
		out = append(out, object{name: name, size: o.Size, etag: strings.Trim(o.ETag, `"`), mod: o.LastModified})
	}
	return out, nil
}

// check proves the bucket is reachable with the credentials before a
// backup starts streaming.
func (s *bucketStore) check(ctx context.Context) error {
	ok, err := s.c.BucketExists(ctx, s.bucket)
	if err != nil {
		return s.wrap("bucket "+s.bucket, err)
	}
	if !ok {
		return fmt.Errorf("%s: bucket %s does not exist (create it first)", s.dest, s.bucket)
	}
	return nil
}

// get streams an object.
func (s *bucketStore) get(ctx context.Context, name string) (io.ReadCloser, error) {
	o, err := s.c.GetObject(ctx, s.bucket, s.key(name), minio.GetObjectOptions{})
	if err != nil {
		return nil, s.wrap("get "+name, err)
	}
	return &objectReader{o: o, s: s, name: name}, nil
}

// objectReader wraps read errors like every other error of the store.
type objectReader struct {
	o    *minio.Object
	s    *bucketStore
	name string
}

func (r *objectReader) Read(p []byte) (int, error) {
	n, err := r.o.Read(p)
	if err != nil && err != io.EOF {
		err = r.s.wrap("read "+r.name, err)
	}
	return n, err
}

func (r *objectReader) Close() error { return r.o.Close() }

// put streams r into the object name as a multipart upload of unknown
// size, holding one part in memory. When r fails or ctx ends, the upload
// is aborted: no object appears and its parts are removed.
func (s *bucketStore) put(ctx context.Context, name string, r io.Reader) (minio.UploadInfo, error) {
	// The payload is not signed (SigV4 UNSIGNED-PAYLOAD, as over https):
	// each part still carries a CRC32C checksum, and the manifest's SHA-256,
	// checked by reading the object back, covers the whole.
	info, err := s.c.PutObject(ctx, s.bucket, s.key(name), r, -1, minio.PutObjectOptions{
		PartSize: partSize, NumThreads: uploadThreads, ConcurrentStreamParts: true, DisableContentSha256: true,
		ContentType: "application/octet-stream"})
	return info, s.wrap("upload "+name, err)
}

// putSmall uploads a small object (a manifest) in one request.
func (s *bucketStore) putSmall(ctx context.Context, name string, b []byte) error {
	_, err := s.c.PutObject(ctx, s.bucket, s.key(name), strings.NewReader(string(b)), int64(len(b)),
		minio.PutObjectOptions{ContentType: "application/json"})
	return s.wrap("upload "+name, err)
}

// remove deletes an object; a missing one is not an error.
func (s *bucketStore) remove(ctx context.Context, name string) error {
	err := s.c.RemoveObject(ctx, s.bucket, s.key(name), minio.RemoveObjectOptions{})
	if minio.ToErrorResponse(err).Code == "NoSuchKey" {
		return nil
	}
	return s.wrap("delete "+name, err)
}

// abortOwn aborts what is left of a failed upload of name. A part still
// being written when the client aborted can land after the abort (S3
// documents that an upload may need aborting more than once), so the
// abort is repeated until no unfinished upload of name is listed; it is
// detached from ctx, which may have been cancelled, and bounded.
func (s *bucketStore) abortOwn(ctx context.Context, name string, log *slog.Logger) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	var err error
	for wait := 100 * time.Millisecond; ; wait *= 2 {
		var n int
		if n, err = s.abortStale(actx, name); err == nil && n == 0 {
			return
		}
		select {
		case <-actx.Done():
			log.Warn("unfinished upload not aborted; the next run of the job aborts it", "file", name, "error", errors.Join(err, actx.Err()))
			return
		case <-time.After(wait):
		}
	}
}

// abortStale aborts the unfinished multipart uploads under prefix (those
// a killed run left, or a failed run's own) so no parts pile up, and says
// how many it found.
func (s *bucketStore) abortStale(ctx context.Context, prefix string) (int, error) {
	var errs []error
	n := 0
	for u := range s.c.ListIncompleteUploads(ctx, s.bucket, s.key(prefix), false) {
		if u.Err != nil {
			return n, s.wrap("list unfinished uploads", u.Err)
		}
		n++
		if err := s.c.RemoveIncompleteUpload(ctx, s.bucket, u.Key); err != nil {
			errs = append(errs, s.wrap("abort unfinished upload "+u.Key, err))
		}
	}
	return n, errors.Join(errs...)
}
