package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
)

const s3Stack = `apiVersion: dbops/v1
kind: Stack
metadata:
  name: shop
spec:
  postgres:
    url: ${PG_URL}
  backups:
    - name: offsite
      source: postgres
      schedule: "@daily"
      destination: s3://BUCKET/cli
      s3:
        endpoint: ENDPOINT
        region: us-east-1
        pathStyle: true
        accessKeyId: ${S3_KEY}
        secretAccessKey: ${S3_SECRET}
      encryption:
        recipients: [RECIPIENT]
      retention: {keepLast: 2}
`

// TestS3BackupCLI runs the dbops binary against a real S3 server: plan
// (JSON checked against the schema), apply (takes the due, encrypted
// backup), backup list, restore with --identity-file, and a wrong secret;
// neither S3 credential, the database password nor the age identity is
// ever printed.
func TestS3BackupCLI(t *testing.T) {
	srv := testsrv.SharedS3(t)
	pg := testsrv.SharedPostgres(t)
	pgURL := testsrv.PostgresDB(t)
	if _, err := testsrv.OpenDB(t, pgURL).Exec(`CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 300)`); err != nil {
		t.Fatal(err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	f := clitest.NewFixture(t, nil)
	f.Write(t, "stack.yaml", strings.NewReplacer("BUCKET", srv.Bucket, "ENDPOINT", srv.Endpoint, "RECIPIENT", id.Recipient().String()).Replace(s3Stack))
	idFile := filepath.Join(t.TempDir(), "backup.key")
	if err := os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.Env["PG_URL"], f.Env["S3_KEY"], f.Env["S3_SECRET"] = pgURL, srv.AccessKey, srv.SecretKey
	secrets := []string{srv.AccessKey, srv.SecretKey, pg.Password, id.String()}
	var all strings.Builder
	run := func(args ...string) clitest.Result {
		res := f.Run(t, args...)
		all.WriteString(res.Stdout + res.Stderr)
		return res
	}

	res := run("plan", "--format", "json", "stack.yaml")
	if res.Code != 0 || !strings.Contains(res.Stdout, `"destination": "s3://`+srv.Bucket+`/cli"`) {
		t.Fatalf("plan: %+v", res)
	}
	clitest.CheckPlanJSON(t, res.Stdout, 1)
	// The process that takes backups verifies them: it needs the identity.
	f.Env["DBOPS_AGE_IDENTITY_FILE"] = idFile
	if res := run("apply", "--auto-approve", "stack.yaml"); res.Code != 0 || !strings.Contains(res.Stdout, "1 done, 0 failed") {
		t.Fatalf("apply: %+v", res)
	}
	res = run("backup", "list", "-f", "stack.yaml")
	if res.Code != 0 || !strings.Contains(res.Stdout, "shop/offsite") || strings.Count(res.Stdout, " yes ") != 1 {
		t.Fatalf("backup list: %+v", res)
	}
	delete(f.Env, "DBOPS_AGE_IDENTITY_FILE")
	dst := testsrv.PostgresDB(t)
	if res := run("restore", "shop/offsite", "-f", "stack.yaml", "--to-url", dst); res.Code != 1 || !strings.Contains(res.Stderr, "--identity-file") {
		t.Errorf("restore without an identity: %+v", res)
	}
	if res := run("restore", "shop/offsite", "-f", "stack.yaml", "--to-url", dst, "--identity-file", idFile); res.Code != 0 || !strings.Contains(res.Stdout, "1 tables, 300 rows") {
		t.Fatalf("restore: %+v", res)
	}

	f.Env["S3_SECRET"] = "wrong-S3-secret-5d1e"
	secrets = append(secrets, "wrong-S3-secret-5d1e")
	if res := run("backup", "run", "shop/offsite", "-f", "stack.yaml"); res.Code != 1 || !strings.Contains(res.Stderr, "s3://"+srv.Bucket+"/cli") {
		t.Errorf("backup run with a wrong secret: %+v", res)
	}
	for _, s := range secrets {
		if strings.Contains(all.String(), s) {
			t.Errorf("output shows the credential %q", s)
		}
	}
}
