package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"

	"filippo.io/age"
)

// opener opens a backup's stored bytes: a file, or an object streamed
// from the store.
type opener func(ctx context.Context) (io.ReadCloser, error)

func fileOpener(path string) opener {
	return func(context.Context) (io.ReadCloser, error) { return os.Open(path) }
}

// checkedReader hashes and counts the stored bytes as they are read.
type checkedReader struct {
	r    io.Reader
	h    hash.Hash
	size int64
}

func newChecked(r io.Reader) *checkedReader { return &checkedReader{r: r, h: sha256.New()} }

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.size += int64(n)
	return n, err
}

// finish reads what the consumer left and compares size and SHA-256
// with the manifest.
func (c *checkedReader) finish(m Manifest) error {
	if _, err := io.CopyBuffer(io.Discard, c, make([]byte, 1<<20)); err != nil {
		return err
	}
	if c.size != m.Size {
		return fmt.Errorf("%s is %d bytes, the manifest says %d", m.File, c.size, m.Size)
	}
	if sum := hex.EncodeToString(c.h.Sum(nil)); sum != m.SHA256 {
		return fmt.Errorf("%s: SHA-256 %s does not match the manifest's %s", m.File, sum, m.SHA256)
	}
	return nil
}

// counter counts the bytes written through it.
type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// encryptTo returns the writer a dump writes to: w itself, or an age
// encryptor in front of it (closed by the returned finish, which records
// the encryption in m).
func encryptTo(job Job, w io.Writer, m *Manifest) (io.Writer, func() error, error) {
	if len(job.Recipients) == 0 {
		return w, func() error { return nil }, nil
	}
	var rs []age.Recipient
	for _, s := range job.Recipients {
		r, err := age.ParseX25519Recipient(s)
		if err != nil {
			return nil, nil, fmt.Errorf("encryption recipient %q: %w", s, err)
		}
		rs = append(rs, r)
	}
	enc, err := age.Encrypt(w, rs...)
	if err != nil {
		return nil, nil, fmt.Errorf("age: %w", err)
	}
	c := &counter{w: enc}
	return c, func() error {
		if err := enc.Close(); err != nil {
			return fmt.Errorf("age: %w", err)
		}
		m.Encryption = &Encryption{Method: "age", Recipients: append([]string(nil), job.Recipients...)}
		m.PlainSize = c.n
		return nil
	}, nil
}

// ErrNoIdentity is wrapped when an encrypted backup is read without an
// age identity.
var ErrNoIdentity = errors.New("no age identity given")

// identities reads the age identities that decrypt m's backup.
func (o Options) identities(m Manifest) ([]age.Identity, error) {
	where := m.Stack + "/" + m.Job
	file := o.IdentityFile
	if file == "" {
		file = os.Getenv("DBOPS_AGE_IDENTITY_FILE")
	}
	var src io.Reader
	switch {
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("backup job %s: identity file: %w", where, err)
		}
		defer f.Close()
		src = f
	case os.Getenv("DBOPS_AGE_IDENTITY") != "":
		src = strings.NewReader(os.Getenv("DBOPS_AGE_IDENTITY"))
		file = "$DBOPS_AGE_IDENTITY"
	default:
		return nil, fmt.Errorf("backup job %s: %s is encrypted with age for %s: %w; set DBOPS_AGE_IDENTITY_FILE (or DBOPS_AGE_IDENTITY) for the process, or pass --identity-file FILE to restore or backup drill",
			where, m.File, strings.Join(m.Encryption.Recipients, ", "), ErrNoIdentity)
	}
	ids, err := age.ParseIdentities(src)
	if err != nil {
		// age's message may quote the file; it never holds the key here.
		return nil, fmt.Errorf("backup job %s: %s holds no age identity (AGE-SECRET-KEY-1...)", where, file)
	}
	return ids, nil
}

// plaintext returns the decrypted stream of an encrypted backup, or r.
func plaintext(r io.Reader, m Manifest, opts Options) (io.Reader, error) {
	if m.Encryption == nil {
		return r, nil
	}
	if m.Encryption.Method != "age" {
		return nil, fmt.Errorf("%s: unknown encryption %q", m.File, m.Encryption.Method)
	}
	ids, err := opts.identities(m)
	if err != nil {
		return nil, err
	}
	p, err := age.Decrypt(r, ids...)
	var nomatch *age.NoIdentityMatchError
	if errors.As(err, &nomatch) {
		return nil, fmt.Errorf("backup job %s/%s: the identity given does not decrypt %s (encrypted for %s)", m.Stack, m.Job, m.File, strings.Join(m.Encryption.Recipients, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("backup job %s/%s: decrypt %s: %w", m.Stack, m.Job, m.File, err)
	}
	return p, nil
}

// verifyStream verifies a backup read as a stream (from object storage,
// or decrypted): the stored bytes are hashed on the way and the plaintext
// goes through pg_restore (Postgres) or the RDB walker (Redis), as
// verifyContent does for a plain local file.
func verifyStream(ctx context.Context, open opener, m Manifest, job Job, opts Options) (string, error) {
	rc, err := open(ctx)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	cr := newChecked(ctxReader{ctx, rc})
	plain, err := plaintext(cr, m, opts)
	if err != nil {
		return "", err
	}
	pc := &countReader{r: plain}
	var detail string
	switch m.Source {
	case SourcePostgres:
		if err := runToolIn(ctx, pgTarget{}, opts.pgRestore(), []string{"--file=" + os.DevNull}, pc, nil); err != nil {
			return "", err
		}
		detail = "archive read in full through pg_restore"
	case SourceRedis:
		info, err := checkRDBStream(pc, m.RDBChecksum == "yes")
		if err != nil {
			return info.Summary(), err
		}
		detail = info.Summary()
	default:
		return "", fmt.Errorf("unknown source %q", m.Source)
	}
	if _, err := io.Copy(io.Discard, pc); err != nil {
		return "", err
	}
	if err := cr.finish(m); err != nil {
		return "", err
	}
	if m.Encryption != nil {
		if pc.n != m.PlainSize {
			return "", fmt.Errorf("%s decrypts to %d bytes, the manifest says %d", m.File, pc.n, m.PlainSize)
		}
		detail += fmt.Sprintf("; decrypted (age), %d bytes", pc.n)
	}
	if m.Source == SourcePostgres && job.verifyMethod() == VerifyRestore {
		rc2, err := open(ctx)
		if err != nil {
			return detail, err
		}
		defer rc2.Close()
		p2, err := plaintext(ctxReader{ctx, rc2}, m, opts)
		if err != nil {
			return detail, err
		}
		more, err := pgRestoreCheck(ctx, "", p2, m, job, opts)
		return detail + "; " + more, err
	}
	return detail, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// spool copies r to a private temporary file.
func spool(ctx context.Context, r io.Reader) (string, func(), error) {
	f, err := os.CreateTemp("", "dbops-backup-*")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	if _, err := io.CopyBuffer(f, ctxReader{ctx, r}, make([]byte, 1<<20)); err != nil {
		cleanup()
		return "", nil, err
	}
	if err := f.Close(); err != nil {
		cleanup()
		return "", nil, err
	}
	return f.Name(), cleanup, nil
}
