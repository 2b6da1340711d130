package spec

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// The s3 credentials are expanded once, into fields that are never
// marshalled: what plan or validate print shows only the ${VAR} names.
func TestLoadS3CredentialsExpandedNotMarshalled(t *testing.T) {
	const key, secret = "AKIAEXAMPLEKEY", "s3cr3t-Secret-Value"
	res, err := Load([]string{filepath.Join("testdata", "schema", "valid", "s3-encrypted.yaml")},
		Options{Getenv: env(map[string]string{"S3_ACCESS_KEY_ID": key, "S3_SECRET_ACCESS_KEY": secret})})
	if err != nil {
		t.Fatal(err)
	}
	b := res.Stacks[0].Spec.Backups[0]
	if b.S3 == nil || b.S3.AccessKey != key || b.S3.SecretKey != secret {
		t.Fatalf("credentials not expanded: %+v", b.S3)
	}
	if !b.S3.PathStyle || b.S3.Endpoint != "http://minio:9000" || len(b.Encryption.Recipients) != 2 {
		t.Errorf("s3/encryption fields not loaded: %+v %+v", b.S3, b.Encryption)
	}
	out, err := json.Marshal(res.Stacks[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{key, secret} {
		if strings.Contains(string(out), s) {
			t.Errorf("marshalled stack contains a credential: %s", out)
		}
	}
	if !strings.Contains(string(out), "${S3_SECRET_ACCESS_KEY}") {
		t.Errorf("marshalled stack lost the ${VAR} reference: %s", out)
	}
}

func TestParseS3Destination(t *testing.T) {
	for _, c := range []struct{ in, bucket, prefix, err string }{
		{"s3://bkp", "bkp", "", ""},
		{"s3://bkp/", "bkp", "", ""},
		{"s3://bkp/a/b/", "bkp", "a/b", ""},
		{"s3://Bkp/a", "", "", "bucket"},
		{"s3://user:pw@bkp/a", "", "", "no credentials"},
		{"/var/backups", "", "", "not an s3://"},
	} {
		b, p, err := ParseS3Destination(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "pw") {
				t.Errorf("%s: error %v, want one containing %q (and no password)", c.in, err, c.err)
			}
			continue
		}
		if err != nil || b != c.bucket || p != c.prefix {
			t.Errorf("%s: got %q %q %v, want %q %q", c.in, b, p, err, c.bucket, c.prefix)
		}
	}
}

// The shipped object-storage example loads.
func TestObjectStorageExampleLoads(t *testing.T) {
	vars := map[string]string{"PG_URL": "postgres://a@db/amanat", "REDIS_URL": "redis://cache:6379/0", "S3_ACCESS_KEY_ID": "k", "S3_SECRET_ACCESS_KEY": "s"}
	res, err := Load([]string{filepath.Join("..", "examples", "object-storage", "stack.yaml")}, Options{Getenv: env(vars)})
	if err != nil {
		t.Fatal(err)
	}
	if b := res.Stacks[0].Spec.Backups; len(b) != 2 || b[0].S3.SecretKey != "s" || b[1].Encryption != nil {
		t.Fatalf("backups %+v", b)
	}
}
