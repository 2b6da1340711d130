package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCRC64Jones(t *testing.T) {
	if got := crc64Update(0, []byte("123456789")); got != 0xe9c6d914c4b8d9ca {
		t.Fatalf("crc64(123456789) = %016x, want e9c6d914c4b8d9ca", got)
	}
	// Incremental updates equal one pass, also past the slicing threshold.
	data := []byte(strings.Repeat("redis rdb checksum ", 400))
	var c crcWriter
	c.Write(data[:1000])
	c.Write(data[1000:])
	if c.crc != crc64Update(0, data) {
		t.Fatal("incremental CRC differs")
	}
}

// fakeBackup writes a data file and its manifest as Run would.
func fakeBackup(t *testing.T, dir string, job Job, at time.Time, content string, ok bool) Manifest {
	t.Helper()
	name := freeName(dir, job, at)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(content))
	m := Manifest{FormatVersion: ManifestFormat, Stack: job.Stack, Job: job.Name, Source: job.Source, File: name,
		StartedAt: at, FinishedAt: at.Add(time.Second), Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:]),
		Verification: Verification{Method: VerifyRead, OK: ok, At: at}}
	if !ok {
		m.Verification.Error = "bad"
	}
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestListCountsOnlyCompleteVerifiedBackups(t *testing.T) {
	dir := t.TempDir()
	job := Job{Stack: "shop", Name: "pg", Source: SourcePostgres, Destination: dir}
	other := Job{Stack: "shop", Name: "pg-2", Source: SourcePostgres, Destination: dir}
	t0 := utc("2025-01-01T03:00:00Z")
	good := fakeBackup(t, dir, job, t0, "good", true)
	failed := fakeBackup(t, dir, job, t0.Add(24*time.Hour), "failed", false)
	missing := fakeBackup(t, dir, job, t0.Add(48*time.Hour), "missing", true)
	os.Remove(filepath.Join(dir, missing.File))
	short := fakeBackup(t, dir, job, t0.Add(72*time.Hour), "short", true)
	os.WriteFile(filepath.Join(dir, short.File), []byte("sho"), 0o640)
	rotten := fakeBackup(t, dir, job, t0.Add(96*time.Hour), "rotten", true)
	os.WriteFile(filepath.Join(dir, rotten.File), []byte("rottem"), 0o640) // same size
	fakeBackup(t, dir, other, t0, "other job", true)
	os.WriteFile(filepath.Join(dir, "shop-pg-20250110T030000Z.dump"), []byte("orphan"), 0o640)
	os.WriteFile(filepath.Join(dir, hiddenPrefix("shop", "pg")+tempMarker+"123.dump"), []byte("partial"), 0o640)

	bs, err := List(dir, job)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, b := range bs {
		got[filepath.Base(b.File)] = b.Reason
		if b.Counted != (b.Reason == "") {
			t.Errorf("%s: counted=%v reason=%q", b.File, b.Counted, b.Reason)
		}
	}
	want := map[string]string{
		good.File: "", rotten.File: "", // List checks size only
		failed.File:                     "verification failed: bad",
		missing.File:                    "data file missing",
		short.File:                      "data file is 3 bytes, the manifest says 5",
		"shop-pg-20250110T030000Z.dump": "no manifest",
	}
	if len(got) != len(want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
	for f, r := range want {
		if got[f] != r {
			t.Errorf("%s: reason %q, want %q", f, got[f], r)
		}
	}
	checked, err := ListChecked(context.Background(), dir, job)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range checked {
		if filepath.Base(b.File) == rotten.File && (b.Counted || !strings.Contains(b.Reason, "checksum mismatch")) {
			t.Errorf("rotten backup: counted=%v reason=%q", b.Counted, b.Reason)
		}
		if filepath.Base(b.File) == good.File && !b.Counted {
			t.Errorf("good backup not counted: %s", b.Reason)
		}
	}
	if n, ok := Newest(checked); !ok || filepath.Base(n.File) != good.File {
		t.Errorf("newest counted = %v %v", n.File, ok)
	}
	if got := LastStarted(checked); !got.Equal(t0.Add(96 * time.Hour)) {
		t.Errorf("LastStarted = %s", got)
	}
	// Delete removes the file and its manifest together.
	for _, b := range checked {
		if filepath.Base(b.File) == good.File {
			if err := Delete(b); err != nil {
				t.Fatal(err)
			}
			if exists(b.File) || exists(b.ManifestFile) {
				t.Fatal("Delete left a file behind")
			}
		}
	}
}

func TestDestinationNotWritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(file, nil, 0o640)
	for _, dir := range []string{filepath.Join(file, "backups"), "/proc/self", "/proc/self/dbops-backups"} {
		job := Job{Stack: "shop", Name: "pg", Source: SourcePostgres, Destination: dir,
			PostgresURL: "postgres://u:secret@127.0.0.1:1/db"}
		_, err := Run(context.Background(), job, Options{})
		if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "not") {
			t.Errorf("destination %s: error %v, want a clear error naming the folder", dir, err)
		}
		t.Log(err)
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("password in error: %v", err)
		}
	}
}

func TestVersionCheck(t *testing.T) {
	if err := checkVersions("/usr/bin/pg_dump", 1500, 180001, "db:5432/app"); err == nil ||
		!strings.Contains(err.Error(), "/usr/bin/pg_dump is PostgreSQL 15 ") || !strings.Contains(err.Error(), "db:5432/app is PostgreSQL 18") {
		t.Fatalf("newer server: %v", err)
	}
	for _, c := range []struct{ client, server int }{{1500, 150004}, {1700, 150004}, {906, 90624}, {1000, 90624}} {
		if err := checkVersions("pg_dump", c.client, c.server, "db"); err != nil {
			t.Errorf("client %d, server %d: %v", c.client, c.server, err)
		}
	}
	if err := checkVersions("pg_dump", 906, 100001, "db"); err == nil || !strings.Contains(err.Error(), "9.6") {
		t.Errorf("9.6 client against a PostgreSQL 10 server: %v", err)
	}
	for line, want := range map[string]int{
		"pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)": 1500,
		"pg_dump (PostgreSQL) 9.6.24":                         906,
		"pg_dump (PostgreSQL) 18beta1":                        1800,
	} {
		if got, ok := parseToolVersion(line); !ok || got != want {
			t.Errorf("%q: %d %v, want %d", line, got, ok, want)
		}
	}
}

func TestPasswordNeverOnCommandLine(t *testing.T) {
	tg, err := parsePG("postgres://amanat:s3cr%40t@db.internal:5433/shop?sslmode=require&password=s3cr@t&pool_max_conns=4")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tg.conn, "s3cr") || tg.password != "s3cr@t" {
		t.Fatalf("conn %q password %q", tg.conn, tg.password)
	}
	if !strings.Contains(tg.conn, "sslmode=require") || strings.Contains(tg.conn, "pool_max_conns") || tg.server != "db.internal:5433/shop" {
		t.Fatalf("conn %q server %q", tg.conn, tg.server)
	}
	if s := tg.withDatabase("scratch"); !strings.HasSuffix(strings.Split(s.conn, "?")[0], "/scratch") || s.server != "db.internal:5433/scratch" {
		t.Fatalf("withDatabase: %q %q", s.conn, s.server)
	}
}

func TestObserve(t *testing.T) {
	dir := t.TempDir()
	job := Job{Stack: "shop", Name: "pg", Source: SourcePostgres, Schedule: mustSchedule(t, "0 3 * * *", "Europe/Berlin"),
		Destination: dir, Retention: Retention{KeepLast: 2}}
	t0 := utc("2025-01-01T02:00:00Z") // 03:00 in Berlin
	var ms []Manifest
	for i := range 4 {
		ms = append(ms, fakeBackup(t, dir, job, t0.AddDate(0, 0, i), fmt.Sprintf("backup %d", i), true))
	}
	failed := fakeBackup(t, dir, job, t0.AddDate(0, 0, 4), "failed", false)

	st, err := Observe(context.Background(), job, utc("2025-01-05T12:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Last == nil || st.Last.Manifest.File != ms[3].File || !st.LastAttempt.Equal(failed.StartedAt) {
		t.Fatalf("last %+v, attempt %s", st.Last, st.LastAttempt)
	}
	if st.Due || !st.Next.Equal(utc("2025-01-06T02:00:00Z")) {
		t.Fatalf("due=%v next=%s", st.Due, st.Next)
	}
	if len(st.Delete) != 2 || st.Delete[0].Manifest.File != ms[1].File || st.Delete[1].Manifest.File != ms[0].File {
		t.Fatalf("delete %+v", st.Delete)
	}
	if len(st.Uncounted) != 1 || st.Uncounted[0].Manifest.File != failed.File {
		t.Fatalf("uncounted %+v", st.Uncounted)
	}
	// Overdue after downtime: due now, once.
	if st, _ := Observe(context.Background(), job, utc("2025-01-09T12:00:00Z")); !st.Due || !st.Next.Equal(utc("2025-01-06T02:00:00Z")) {
		t.Fatalf("overdue: due=%v next=%s", st.Due, st.Next)
	}
	// A job without backups is due now.
	empty := job
	empty.Destination = filepath.Join(dir, "none")
	if st, err := Observe(context.Background(), empty, utc("2025-01-09T12:00:00Z")); err != nil || !st.Due || st.Last != nil {
		t.Fatalf("no backups: %v %+v", err, st)
	}
}
