package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Verify reads a finished backup back with the job's method and returns
// the result, which the caller records in the manifest (WriteManifest):
//   - always: size and SHA-256 against the manifest;
//   - read, postgres: `pg_restore --list`, then the whole archive through
//     `pg_restore -f /dev/null`, so every data block is decompressed;
//   - read, redis: CheckRDB: every record read up to the EOF opcode (a
//     walk that stops early fails verification), and the CRC-64; a zero
//     checksum is accepted when the manifest says the server runs
//     rdbchecksum no or does not say, refused when it says yes;
//   - restore (postgres): read, then pg_restore into a scratch database
//     created on the job's server and dropped afterwards, comparing the row
//     count of every table with the counts recorded at dump time.
func Verify(ctx context.Context, m Manifest, dir string, job Job, opts Options) Verification {
	path := filepath.Join(dir, m.File)
	v := Verification{Method: job.verifyMethod()}
	err := checkFile(ctx, path, m)
	switch {
	case err != nil:
	case m.Encryption != nil:
		v.Detail, err = verifyStream(ctx, fileOpener(path), m, job, opts)
	default:
		v.Detail, err = verifyContent(ctx, path, m, job, opts)
	}
	v.OK, v.At = err == nil, opts.now().UTC()
	if err != nil {
		v.Error = err.Error()
	}
	return v
}

// verifyContent runs the method's checks on a file whose checksum is known good.
func verifyContent(ctx context.Context, path string, m Manifest, job Job, opts Options) (string, error) {
	switch m.Source {
	case SourceRedis:
		info, err := checkRDB(path, m.RDBChecksum == "yes")
		if err != nil {
			return info.Summary(), err
		}
		return info.Summary(), nil
	case SourcePostgres:
		detail, err := pgReadCheck(ctx, opts.pgRestore(), path)
		if err != nil || job.verifyMethod() != VerifyRestore {
			return detail, err
		}
		more, err := pgRestoreCheck(ctx, path, nil, m, job, opts)
		return detail + "; " + more, err
	}
	return "", fmt.Errorf("unknown source %q", m.Source)
}

// pgReadCheck lists the archive's table of contents and then restores it
// to /dev/null, which decompresses every data block.
func pgReadCheck(ctx context.Context, bin, path string) (string, error) {
	var list bytes.Buffer
	if err := runTool(ctx, pgTarget{}, bin, []string{"--list", path}, &list); err != nil {
		return "", err
	}
	entries := 0
	for _, line := range strings.Split(list.String(), "\n") {
		if line != "" && !strings.HasPrefix(line, ";") {
			entries++
		}
	}
	if err := runTool(ctx, pgTarget{}, bin, []string{"--file=" + os.DevNull, path}, nil); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d archive entries read in full", entries), nil
}

// pgRestoreCheck restores the archive into a scratch database on the
// job's server, compares row counts and drops the database, also on failure.
// With in set, the archive is read from it instead of path.
func pgRestoreCheck(ctx context.Context, path string, in io.Reader, m Manifest, job Job, opts Options) (string, error) {
	return restoreScratch(ctx, path, in, m, job, opts, nil, true)
}

// restoreScratch restores into a scratch database, compares row counts
// with the manifest's (required when needCounts), runs checks (queries
// returning one boolean) and drops the database, also on failure.
func restoreScratch(ctx context.Context, path string, in io.Reader, m Manifest, job Job, opts Options, checks []string, needCounts bool) (string, error) {
	if m.RowCounts == nil && needCounts {
		return "", fmt.Errorf("the manifest has no row counts (the backup was taken with verify: read): nothing to compare a restore with")
	}
	src, err := parsePG(job.PostgresURL)
	if err != nil {
		return "", err
	}
	admin, err := src.connect(ctx, opts.connectTimeout(), false)
	if err != nil {
		return "", err
	}
	defer admin.Close(context.Background())
	var num int
	if err := admin.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
		return "", fmt.Errorf("postgres %s: %s", src.server, src.scrub(err.Error()))
	}
	name := scratchName()
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident+" TEMPLATE template0"); err != nil {
		return "", fmt.Errorf("postgres %s: create scratch database %s (the role needs CREATEDB): %s", src.server, name, src.scrub(err.Error()))
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		drop := "DROP DATABASE IF EXISTS " + ident
		if num >= 130000 {
			drop += " WITH (FORCE)"
		}
		if _, err := admin.Exec(dctx, drop); err != nil {
			opts.log().Error("drop scratch database", "server", src.server, "database", name, "error", src.scrub(err.Error()))
		}
	}()
	scratch := src.withDatabase(name)
	args := []string{"--no-password", "--no-owner", "--no-privileges", "--exit-on-error", "--dbname=" + scratch.conn}
	if in == nil {
		args = append(args, path)
	}
	if err := runToolIn(ctx, scratch, opts.pgRestore(), args, in, nil); err != nil {
		return "", fmt.Errorf("restore into scratch database %s: %w", name, err)
	}
	conn, err := scratch.connect(ctx, opts.connectTimeout(), true)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	got, err := rowCounts(ctx, conn)
	if err != nil {
		return "", fmt.Errorf("postgres %s: %s", scratch.server, scratch.scrub(err.Error()))
	}
	if diff := compareCounts(m.RowCounts, got); m.RowCounts != nil && len(diff) > 0 {
		return "", fmt.Errorf("restored into scratch database %s, but row counts differ: %s", name, strings.Join(diff, "; "))
	}
	var rows int64
	for _, n := range got {
		rows += n
	}
	match := "counts match"
	if m.RowCounts == nil {
		match = "no row counts in the manifest to compare"
	}
	for i, q := range checks {
		var ok bool
		if err := conn.QueryRow(ctx, q).Scan(&ok); err != nil {
			return "", fmt.Errorf("check %d (%s) in scratch database %s: %s", i+1, q, name, scratch.scrub(err.Error()))
		}
		if !ok {
			return "", fmt.Errorf("check %d failed in the restored backup: %s returned false", i+1, q)
		}
	}
	if len(checks) > 0 {
		match += fmt.Sprintf(", %d checks passed", len(checks))
	}
	return fmt.Sprintf("restored into scratch database %s: %d tables, %d rows, %s", name, len(got), rows, match), nil
}

func scratchName() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "dbops_verify_" + hex.EncodeToString(b)
}

// compareCounts lists the tables whose counts differ, sorted.
func compareCounts(want, got map[string]int64) []string {
	var diff []string
	for t, n := range want {
		g, ok := got[t]
		switch {
		case !ok:
			diff = append(diff, fmt.Sprintf("%s missing (%d rows in the source)", t, n))
		case g != n:
			diff = append(diff, fmt.Sprintf("%s has %d rows, the source had %d", t, g, n))
		}
	}
	for t, g := range got {
		if _, ok := want[t]; !ok {
			diff = append(diff, fmt.Sprintf("%s (%d rows) is not in the source", t, g))
		}
	}
	slices.Sort(diff)
	return diff
}
