package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// runBucket is Run for an s3:// destination. The dump is streamed, hashed
// (and encrypted) on the way, into a multipart upload under its final
// name; a failed or interrupted dump aborts the upload, so no object
// appears and no parts stay. The upload is then verified by streaming it
// back, and only then is its manifest written: an object without one is
// listed as not counted, as a file without a manifest is.
func runBucket(ctx context.Context, job Job, opts Options) (Manifest, error) {
	fail := func(err error) (Manifest, error) {
		return Manifest{}, fmt.Errorf("backup %s/%s: %w", job.Stack, job.Name, err)
	}
	s, err := openBucket(job)
	if err != nil {
		return fail(err)
	}
	if err := s.check(ctx); err != nil {
		return fail(err)
	}
	log := opts.log().With("stack", job.Stack, "job", job.Name)
	if _, err := s.abortStale(ctx, jobPrefix(job.Stack, job.Name)); err != nil {
		log.Warn("unfinished uploads of an earlier run not aborted", "error", err)
	}
	objs, err := s.list(ctx)
	if err != nil {
		return fail(err)
	}
	taken := map[string]bool{}
	for _, o := range objs {
		taken[o.name] = true
	}
	m := Manifest{FormatVersion: ManifestFormat, Stack: job.Stack, Job: job.Name, Source: job.Source, StartedAt: opts.now().UTC()}
	m.File = freeNameIn(taken, job, m.StartedAt)
	log.Info("backup started", "source", job.Source, "destination", s.dest)

	pr, pw := io.Pipe()
	uctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		etag string
		err  error
	}
	uploaded := make(chan result, 1)
	go func() {
		info, err := s.put(uctx, m.File, pr)
		closeErr := err
		if closeErr == nil {
			closeErr = errors.New("upload ended early")
		}
		pr.CloseWithError(closeErr) // a dump still writing fails with the upload's error
		uploaded <- result{strings.Trim(info.ETag, `"`), err}
	}()
	cw := newCheckedWriter(pw)
	w, sealed, err := encryptTo(job, opts.watch(cw), &m)
	if err == nil {
		err = dump(ctx, job, opts, w, &m)
	}
	if err == nil {
		err = sealed()
	}
	if err != nil {
		pw.CloseWithError(err) // the upload is aborted
		cancel()
		<-uploaded
		s.abortOwn(ctx, m.File, log)
		return fail(err)
	}
	pw.Close()
	up := <-uploaded
	if up.err != nil {
		s.abortOwn(ctx, m.File, log)
		return fail(up.err)
	}
	m.FinishedAt, m.Size, m.SHA256, m.ETag = opts.now().UTC(), cw.c.size, cw.sum(), up.etag

	if opts.NoVerify {
		m.Verification = Verification{Method: VerifyNone, At: opts.now().UTC()}
	} else {
		m.Verification = verifyBucket(ctx, s, m, job, opts)
		if ctx.Err() != nil {
			return fail(fmt.Errorf("verification interrupted (%s stays, not counted): %w", s.url(m.File), ctx.Err()))
		}
	}
	if err := writeBucketManifest(ctx, s, m); err != nil {
		return m, fmt.Errorf("backup %s/%s: write manifest of %s (the backup is not counted): %w", job.Stack, job.Name, m.File, err)
	}
	log.Info("backup finished", "file", s.url(m.File), "size", m.Size, "duration", m.Duration().Round(time.Millisecond),
		"verified", m.Verification.OK, "verification", m.Verification.Method)
	if !m.Verification.OK && m.Verification.Method != VerifyNone {
		return m, &VerifyError{File: s.url(m.File), Err: m.Verification.Error}
	}
	return m, nil
}

// verifyBucket is Verify for an object.
func verifyBucket(ctx context.Context, s *bucketStore, m Manifest, job Job, opts Options) Verification {
	v := Verification{Method: job.verifyMethod()}
	detail, err := verifyStream(ctx, func(ctx context.Context) (io.ReadCloser, error) { return s.get(ctx, m.File) }, m, job, opts)
	v.Detail, v.OK, v.At = detail, err == nil, opts.now().UTC()
	if err != nil {
		v.Error = err.Error()
	}
	return v
}

func writeBucketManifest(ctx context.Context, s *bucketStore, m Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return s.putSmall(ctx, ManifestName(m.File), append(b, '\n'))
}

// freeNameIn is freeName against a listing.
func freeNameIn(taken map[string]bool, job Job, t time.Time) string {
	base := jobPrefix(job.Stack, job.Name) + t.UTC().Format(timeLayout)
	ext := extension(job.Source)
	for i := 0; ; i++ {
		name := base + ext
		if i > 0 {
			name = fmt.Sprintf("%s.%d%s", base, i, ext)
		}
		if !taken[name] && !taken[ManifestName(name)] {
			return name
		}
	}
}

// checkedWriter hashes and counts what is written through it.
type checkedWriter struct {
	w io.Writer
	c *checkedReader // its hash and size
}

func newCheckedWriter(w io.Writer) *checkedWriter { return &checkedWriter{w: w, c: newChecked(nil)} }

func (c *checkedWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.c.h.Write(p[:n])
	c.c.size += int64(n)
	return n, err
}

func (c *checkedWriter) sum() string { return fmt.Sprintf("%x", c.c.h.Sum(nil)) }

// listBucket is List for an s3:// destination: the same rules, with the
// object's size and ETag (recorded in the manifest) checked instead of a
// file's size.
func listBucket(ctx context.Context, job Job) ([]Backup, error) {
	s, err := openBucket(job)
	if err != nil {
		return nil, err
	}
	objs, err := s.list(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]object{}
	for _, o := range objs {
		byName[o.name] = o
	}
	prefix := jobPrefix(job.Stack, job.Name)
	described := map[string]bool{}
	var out []Backup
	for _, o := range objs {
		if strings.HasPrefix(o.name, ".") || !strings.HasSuffix(o.name, manifestSuffix) {
			continue
		}
		b := Backup{ManifestFile: s.url(o.name), ID: strings.TrimSuffix(o.name, manifestSuffix), bucket: s}
		m, err := readBucketManifest(ctx, s, o.name)
		if err != nil && m.Stack == "" {
			if strings.HasPrefix(o.name, prefix) {
				b.Reason = "manifest unreadable: " + err.Error()
				out = append(out, b)
			}
			continue
		}
		described[m.File] = true
		if m.Stack != job.Stack || m.Job != job.Name {
			continue
		}
		b.Manifest = m
		if m.File != "" && filepath.Base(m.File) == m.File && !strings.Contains(m.File, "/") {
			b.File = s.url(m.File)
		}
		b.Reason = quickCheckMeta(b, err)
		if b.Reason == "" {
			data, ok := byName[m.File]
			switch {
			case !ok:
				b.Reason = "data object missing"
			case data.size != m.Size:
				b.Reason = fmt.Sprintf("data object is %d bytes, the manifest says %d", data.size, m.Size)
			case m.ETag != "" && data.etag != m.ETag:
				b.Reason = fmt.Sprintf("data object changed: ETag %s, the manifest says %s", data.etag, m.ETag)
			}
		}
		b.Counted = b.Reason == ""
		out = append(out, b)
	}
	for _, o := range objs {
		ext := filepath.Ext(o.name)
		rest, ok := strings.CutPrefix(strings.TrimSuffix(o.name, ext), prefix)
		if ok && stampPattern.MatchString(rest) && (ext == ".dump" || ext == ".rdb") && !described[o.name] {
			out = append(out, Backup{ID: strings.TrimSuffix(o.name, ext), File: s.url(o.name), Reason: "no manifest", bucket: s})
		}
	}
	sortNewestFirst(out)
	return out, nil
}

func readBucketManifest(ctx context.Context, s *bucketStore, name string) (Manifest, error) {
	rc, err := s.get(ctx, name)
	if err != nil {
		return Manifest{}, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 16<<20))
	if err != nil {
		return Manifest{}, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", s.url(name), err)
	}
	if m.FormatVersion != ManifestFormat {
		return m, fmt.Errorf("%s: unknown formatVersion %q", s.url(name), m.FormatVersion)
	}
	return m, nil
}

// deleteBucket removes a backup's manifest, then its object.
func deleteBucket(ctx context.Context, b Backup) error {
	var errs []error
	for _, u := range []string{b.ManifestFile, b.File} {
		if u == "" {
			continue
		}
		if err := b.bucket.remove(ctx, strings.TrimPrefix(u, b.bucket.dest+"/")); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete backup %s: %w", b.ID, err)
	}
	return nil
}

// open streams a listed backup's stored bytes, from its file or object.
func (b Backup) open(ctx context.Context) (io.ReadCloser, error) {
	if b.bucket != nil {
		return b.bucket.get(ctx, b.Manifest.File)
	}
	return fileOpener(b.File)(ctx)
}
