package backup

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/spec"
)

const shopSQL = `
CREATE SCHEMA shop;
CREATE TABLE shop.customers (id bigserial PRIMARY KEY, email text UNIQUE NOT NULL, profile jsonb NOT NULL);
CREATE TABLE shop.orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES shop.customers,
	placed_at timestamptz NOT NULL, items jsonb NOT NULL, note text);
CREATE INDEX ON shop.orders USING gin (items);
CREATE TABLE public."Audit Log" (id int PRIMARY KEY, note text);
CREATE TABLE public.empty_table (id int);
CREATE TABLE public.goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL, is_applied boolean NOT NULL,
	tstamp timestamp DEFAULT now());
INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (1, true), (2, true), (3, true), (3, false);
INSERT INTO shop.customers (email, profile)
	SELECT 'c' || g || '@example.com', jsonb_build_object('name', 'Customer ' || g, 'tags', jsonb_build_array('vip', g % 7),
		'address', jsonb_build_object('city', 'Tashkent', 'zip', lpad(g::text, 6, '0')), 'score', g * 1.5)
	FROM generate_series(1, 2000) g;
INSERT INTO shop.orders (customer_id, placed_at, items, note)
	SELECT 1 + g % 2000, timestamptz '2024-01-01' + g * interval '1 minute',
		jsonb_build_array(jsonb_build_object('sku', md5(g::text), 'qty', g % 5 + 1, 'price', (g % 1000) / 10.0)),
		md5(random()::text) || md5(random()::text)
	FROM generate_series(1, 20000) g;
INSERT INTO public."Audit Log" SELECT g, 'événement ' || g || ' ✓' FROM generate_series(1, 500) g;
`

var wantCounts = map[string]int64{"shop.customers": 2000, "shop.orders": 20000, "public.Audit Log": 500,
	"public.empty_table": 0, "public.goose_db_version": 5}

func pgJob(t *testing.T, url, verify string) Job {
	t.Helper()
	return Job{Stack: "shop", Name: "pg", Source: SourcePostgres, Schedule: mustSchedule(t, "@daily", ""), Destination: t.TempDir(),
		Retention: Retention{KeepLast: 3}, Verify: verify, PostgresURL: url}
}

// fingerprint hashes the content of every table, JSONB included.
func fingerprint(t *testing.T, url string) string {
	t.Helper()
	return scalar(t, url, `SELECT md5(
		(SELECT string_agg(concat_ws('|', id, email, profile), ',' ORDER BY id) FROM shop.customers) ||
		(SELECT string_agg(concat_ws('|', id, customer_id, placed_at, items, note), ',' ORDER BY id) FROM shop.orders) ||
		(SELECT string_agg(concat_ws('|', id, note), ',' ORDER BY id) FROM public."Audit Log"))`)
}

func TestPostgresBackupVerifyRestore(t *testing.T) {
	ctx := testCtx(t)
	src := testsrv.PostgresDB(t)
	execSQL(t, src, shopSQL)
	job := pgJob(t, src, VerifyRestore)

	m, err := Run(ctx, job, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The manifest and the file.
	if !regexp.MustCompile(`^shop-pg-\d{8}T\d{6}Z\.dump$`).MatchString(m.File) {
		t.Errorf("file name %q", m.File)
	}
	v := m.Verification
	if !v.OK || v.Method != VerifyRestore || !strings.Contains(v.Detail, "counts match") || !strings.Contains(v.Detail, "archive entries read") {
		t.Fatalf("verification %+v", v)
	}
	if m.MigrationVersion == nil || *m.MigrationVersion != 2 {
		t.Errorf("migration version %v, want 2 (version 3 was rolled back)", m.MigrationVersion)
	}
	for tbl, n := range wantCounts {
		if m.RowCounts[tbl] != n {
			t.Errorf("row count %s = %d, want %d", tbl, m.RowCounts[tbl], n)
		}
	}
	if want := scalar(t, src, "current_setting('server_version')"); m.ServerVersion != want || !strings.Contains(m.ClientVersion, "pg_dump") {
		t.Errorf("versions: server %q (want %q), client %q", m.ServerVersion, want, m.ClientVersion)
	}
	path := filepath.Join(job.Destination, m.File)
	if _, sum, _ := hashFile(ctx, path); sum != m.SHA256 || fileSize(t, path) != m.Size {
		t.Errorf("file does not match its manifest")
	}
	raw, _ := os.ReadFile(filepath.Join(job.Destination, ManifestName(m.File)))
	if pw := spec.Password(src); strings.Contains(string(raw), pw) {
		t.Error("the manifest holds the password")
	}
	if left := tempFiles(job.Destination, job); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if n := scalar(t, src, "SELECT count(*) FROM pg_database WHERE datname LIKE 'dbops_verify_%'"); n != "0" {
		t.Errorf("%s scratch databases left", n)
	}
	bs, err := List(job.Destination, job)
	if err != nil || len(counted(bs)) != 1 || counted(bs)[0].Manifest.SHA256 != m.SHA256 {
		t.Fatalf("List: %v %+v", err, bs)
	}

	// Restore into an empty database: same content.
	dst := testsrv.PostgresDB(t)
	rep, err := Restore(ctx, m, path, dst, false, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Tables != len(wantCounts) || rep.Rows != 22505 || len(rep.Mismatches) != 0 || strings.Contains(rep.Command, spec.Password(dst)) {
		t.Errorf("report %+v", rep)
	}
	if fingerprint(t, dst) != fingerprint(t, src) {
		t.Error("restored data differs from the source")
	}
	t.Log(rep.String())

	// Over a database with tables: refused without clean, done with it.
	execSQL(t, src, "DELETE FROM shop.orders WHERE id > 100; INSERT INTO public.empty_table VALUES (1)")
	_, err = Restore(ctx, m, path, src, false, Options{})
	if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "--clean") {
		t.Fatalf("restore over tables without clean: %v", err)
	}
	if n := scalar(t, src, "SELECT count(*) FROM shop.orders"); n != "100" {
		t.Fatalf("refused restore changed the database: %s orders", n)
	}
	rep, err = Restore(ctx, m, path, src, true, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := scalar(t, src, "SELECT count(*) FROM shop.orders"); n != "20000" || len(rep.Mismatches) != 0 || rep.TablesBefore != 5 {
		t.Fatalf("after --clean: %s orders, report %+v", n, rep)
	}
	if fingerprint(t, src) != fingerprint(t, dst) {
		t.Error("data after --clean restore differs")
	}
}

func TestPostgresVerifyDetectsDamage(t *testing.T) {
	ctx := testCtx(t)
	src := testsrv.PostgresDB(t)
	execSQL(t, src, shopSQL)
	job := pgJob(t, src, VerifyRead)
	m, err := Run(ctx, job, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.RowCounts != nil || !m.Verification.OK || m.Verification.Method != VerifyRead {
		t.Fatalf("read verification: %+v, counts %v", m.Verification, m.RowCounts)
	}
	// A flipped byte in a data block: the checksum catches it, and so does
	// reading every block, while the table of contents still lists fine.
	dir := t.TempDir()
	bad := filepath.Join(dir, m.File)
	copyFile(t, filepath.Join(job.Destination, m.File), bad)
	flipByte(t, bad, fileSize(t, bad)/2)
	if v := Verify(ctx, m, dir, job, Options{}); v.OK || !strings.Contains(v.Error, "SHA-256") {
		t.Errorf("corrupt copy: %+v", v)
	}
	if err := runTool(ctx, pgTarget{}, "pg_restore", []string{"--list", bad}, nil); err != nil {
		t.Fatalf("pg_restore --list of the damaged archive failed (%v): the test no longer shows that --list is not enough", err)
	}
	if _, err := pgReadCheck(ctx, "pg_restore", bad); err == nil {
		t.Error("reading every data block did not notice the damage")
	}

	// verify: restore compares row counts and drops its scratch database,
	// also when they differ.
	rjob := job
	rjob.Verify = VerifyRestore
	wrong := m
	wrong.RowCounts = map[string]int64{"shop.customers": 2000, "shop.orders": 19999, "public.Audit Log": 500, "public.empty_table": 0, "public.goose_db_version": 5}
	v := Verify(ctx, wrong, job.Destination, rjob, Options{})
	if v.OK || !strings.Contains(v.Error, "shop.orders has 20000 rows, the source had 19999") {
		t.Errorf("count mismatch: %+v", v)
	}
	if n := scalar(t, src, "SELECT count(*) FROM pg_database WHERE datname LIKE 'dbops_verify_%'"); n != "0" {
		t.Errorf("%s scratch databases left after a failed verification", n)
	}
	if v := Verify(ctx, m, job.Destination, rjob, Options{}); v.OK || !strings.Contains(v.Error, "no row counts") {
		t.Errorf("restore verification without recorded counts: %+v", v)
	}

	// A backup that fails verification is kept, with its manifest, and not counted.
	m2, err := Run(ctx, job, Options{PgRestorePath: "/nonexistent/pg_restore"})
	var ve *VerifyError
	if !errors.As(err, &ve) || m2.Verification.OK || !exists(filepath.Join(job.Destination, m2.File)) {
		t.Fatalf("failed verification: %v %+v", err, m2.Verification)
	}
	bs, _ := List(job.Destination, job)
	if len(bs) != 2 || len(counted(bs)) != 1 || counted(bs)[0].Manifest.File != m.File {
		t.Fatalf("list after a failed verification: %+v", bs)
	}
	if _, err := Restore(ctx, m2, filepath.Join(job.Destination, m2.File), testsrv.PostgresDB(t), false, Options{}); err == nil {
		t.Error("restored a backup that failed verification")
	}
}

func TestPostgresErrorsHideThePassword(t *testing.T) {
	ctx := testCtx(t)
	pg := testsrv.SharedPostgres(t)
	job := pgJob(t, pg.URLAs("postgres", "wrong-Passw0rd", "postgres"), VerifyRead)
	_, err := Run(ctx, job, Options{})
	if err == nil || strings.Contains(err.Error(), "wrong-Passw0rd") {
		t.Fatalf("wrong password: %v", err)
	}
	job.PostgresURL = pg.URLAs("postgres", pg.Password, "no_such_db")
	if _, err = Run(ctx, job, Options{}); err == nil || strings.Contains(err.Error(), pg.Password) || !strings.Contains(err.Error(), "no_such_db") {
		t.Fatalf("missing database: %v", err)
	}
	if bs, _ := List(job.Destination, job); len(bs) != 0 || len(tempFiles(job.Destination, job)) != 0 {
		t.Fatalf("failed runs left %v / %v", bs, tempFiles(job.Destination, job))
	}
	t.Log(err)
}
