package backup

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/amanat/dbops/spec"
)

// dump streams the job's source into w and fills the manifest.
func dump(ctx context.Context, job Job, opts Options, w io.Writer, m *Manifest) error {
	switch job.Source {
	case SourcePostgres:
		return dumpPostgres(ctx, job, opts, w, m)
	case SourceRedis:
		return dumpRedis(ctx, job, opts, w, m)
	}
	return fmt.Errorf("source %q is not postgres or redis", job.Source)
}

// VerifyError is returned by Run when the backup was taken but failed
// verification: it is kept, with its manifest, but never counted.
type VerifyError struct {
	File string
	Err  string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("backup %s failed verification (kept for inspection, not counted): %s", e.File, e.Err)
}

// Run takes one backup of the job now, whatever its schedule, verifies it
// and writes its manifest. The data is streamed to a temporary file in the
// destination and fsynced; only then is it renamed into place, followed by
// the manifest, so an interrupted run leaves at most a temporary file,
// which the next run of the job removes.
//
// On success the error is nil and the manifest is counted. A backup that
// fails verification is kept: Run returns its manifest and a *VerifyError.
// Any other error means no backup was kept.
func Run(ctx context.Context, job Job, opts Options) (Manifest, error) {
	if spec.IsS3(job.Destination) {
		return runBucket(ctx, job, opts)
	}
	unlock, err := destination(ctx, job)
	if err != nil {
		return Manifest{}, err
	}
	defer unlock()
	log := opts.log().With("stack", job.Stack, "job", job.Name)
	tf, err := createTemp(job, extension(job.Source))
	if err != nil {
		return Manifest{}, err
	}
	defer tf.discard()

	m := Manifest{FormatVersion: ManifestFormat, Stack: job.Stack, Job: job.Name, Source: job.Source, StartedAt: opts.now().UTC()}
	log.Info("backup started", "source", job.Source, "destination", job.Destination)
	w, sealed, err := encryptTo(job, opts.watch(tf), &m)
	if err == nil {
		err = dump(ctx, job, opts, w, &m)
	}
	if err == nil {
		err = sealed()
	}
	if err == nil {
		err = tf.finish()
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("backup %s/%s: %w", job.Stack, job.Name, err)
	}
	m.FinishedAt, m.Size, m.SHA256 = opts.now().UTC(), tf.size, tf.sum()
	m.File = freeName(job.Destination, job, m.StartedAt)

	if opts.NoVerify {
		m.Verification = Verification{Method: VerifyNone, At: opts.now().UTC()}
	} else {
		// Verified under the temporary name: the file is published with
		// its result, and a run killed while verifying leaves only a temp.
		tmp := m
		tmp.File = filepath.Base(tf.path())
		m.Verification = Verify(ctx, tmp, job.Destination, job, opts)
		if ctx.Err() != nil {
			return Manifest{}, fmt.Errorf("backup %s/%s: verification interrupted: %w", job.Stack, job.Name, ctx.Err())
		}
	}
	if err := tf.publish(m.File); err != nil {
		return Manifest{}, fmt.Errorf("backup %s/%s: %w", job.Stack, job.Name, err)
	}
	if err := WriteManifest(job.Destination, m); err != nil {
		return m, fmt.Errorf("backup %s/%s: write manifest of %s (the backup is not counted): %w", job.Stack, job.Name, m.File, err)
	}
	log.Info("backup finished", "file", m.File, "size", m.Size, "duration", m.Duration().Round(time.Millisecond),
		"verified", m.Verification.OK, "verification", m.Verification.Method)
	if !m.Verification.OK && m.Verification.Method != VerifyNone {
		return m, &VerifyError{File: m.File, Err: m.Verification.Error}
	}
	return m, nil
}
