package backup

import (
	"context"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amanat/dbops/internal/testsrv"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperBackup()) // a child process that takes a backup and is killed
	}
	testsrv.Main(m)
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func dbOf(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// execSQL runs SQL on the database of rawURL.
func execSQL(t *testing.T, rawURL, sql string) {
	t.Helper()
	if err := testsrv.SharedPostgres(t).Exec(testCtx(t), dbOf(t, rawURL), sql); err != nil {
		t.Fatal(err)
	}
}

// scalar returns the first column of the first row as text.
func scalar(t *testing.T, rawURL, sql string) string {
	t.Helper()
	ctx := testCtx(t)
	c, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var s string
	if err := c.QueryRow(ctx, "SELECT ("+sql+")::text").Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// flipByte inverts the bits of the byte at off (negative: from the end).
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if off < 0 {
		fi, _ := f.Stat()
		off += fi.Size()
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// tempFiles lists the job's temporary files in dir.
func tempFiles(dir string, job Job) []string {
	m, _ := filepath.Glob(filepath.Join(dir, globEscape(hiddenPrefix(job.Stack, job.Name)+tempMarker)+"*"))
	return m
}

// waitForTemp waits until a temporary file of the job holds at least min
// bytes, or done is closed (then it fails the test).
func waitForTemp(t *testing.T, dir string, job Job, min int64, done <-chan struct{}) string {
	t.Helper()
	for {
		for _, p := range tempFiles(dir, job) {
			if fi, err := os.Stat(p); err == nil && fi.Size() >= min {
				return p
			}
		}
		select {
		case <-done:
			t.Fatal("the backup ended before it could be interrupted; make the table bigger")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func counted(bs []Backup) []Backup {
	var out []Backup
	for _, b := range bs {
		if b.Counted {
			out = append(out, b)
		}
	}
	return out
}
