package spec

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"

	"filippo.io/age"
)

// S3 configures an s3://bucket/prefix backup destination on any
// S3-compatible store. Credentials come from ${VAR} references (never
// literal: the spec lives in git), ${file:PATH} secret files, or, when
// both are left out, from the
// standard AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
// ~/.aws/credentials, instance metadata).
type S3 struct {
	// Endpoint is the store's http(s) URL, e.g. http://minio:9000; AWS
	// S3 when empty.
	Endpoint string `json:"endpoint,omitempty"`
	Region   string `json:"region,omitempty"`
	// PathStyle addresses buckets as endpoint/bucket instead of
	// bucket.endpoint (MinIO, SeaweedFS, Ceph without wildcard DNS).
	PathStyle       bool   `json:"pathStyle,omitempty"`
	AccessKeyID     string `json:"accessKeyId,omitempty"`     // ${VAR}, as written
	SecretAccessKey string `json:"secretAccessKey,omitempty"` // ${VAR}, as written

	// The expanded credentials: never marshalled, never printed.
	AccessKey string `json:"-"`
	SecretKey string `json:"-"`
}

// Encryption encrypts backups client-side with age before they leave the
// process; only the recipients' public keys are in the spec.
type Encryption struct {
	Recipients []string `json:"recipients"`
}

var (
	bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	envOnly    = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*|file:[^}]+)\}$`)
)

// ParseS3Destination splits s3://bucket/prefix; the prefix has no leading
// or trailing slash.
func ParseS3Destination(dest string) (bucket, prefix string, err error) {
	u, err := url.Parse(dest)
	if err != nil || u.Scheme != "s3" {
		return "", "", fmt.Errorf("%q is not an s3://bucket/prefix URL", dest)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		// The query or user info may hold a secret: not printed.
		return "", "", fmt.Errorf("s3://%s%s...: an s3:// destination has no credentials, query or fragment (credentials go in s3.accessKeyId/secretAccessKey as ${VAR})", u.Host, u.Path)
	}
	if !bucketName.MatchString(u.Host) {
		return "", "", fmt.Errorf("%q: bucket %q must be 3-63 lower-case letters, digits, '.' and '-'", dest, u.Host)
	}
	return u.Host, strings.Trim(u.Path, "/"), nil
}

// IsS3 says whether a backup destination is object storage.
func IsS3(dest string) bool { return strings.HasPrefix(dest, "s3://") }

// checkStorage checks a job's destination, s3 and encryption fields and
// expands its credentials.
func checkStorage(b *Backup, f, specFile string, opts Options, bad func(field, format string, args ...any), warn func(field, msg string)) {
	switch {
	case IsS3(b.Destination):
		if _, _, err := ParseS3Destination(b.Destination); err != nil {
			bad(f+"destination", "%v", err)
		}
	case !filepath.IsAbs(b.Destination):
		bad(f+"destination", "%q must be an absolute folder (a mounted volume) or s3://bucket/prefix, not a path in the repository", b.Destination)
	}
	if s := b.S3; s != nil {
		if !IsS3(b.Destination) {
			bad(f+"s3", "s3 settings need an s3://bucket/prefix destination")
		}
		if s.Endpoint != "" {
			if u, err := url.Parse(s.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
				bad(f+"s3.endpoint", "%q is not an http:// or https:// URL without credentials", Redact(s.Endpoint))
			}
		}
		if (s.AccessKeyID == "") != (s.SecretAccessKey == "") {
			bad(f+"s3", "set both accessKeyId and secretAccessKey, or neither (the standard AWS chain is used)")
		}
		for _, c := range []struct {
			field, raw string
			out        *string
		}{{"accessKeyId", s.AccessKeyID, &s.AccessKey}, {"secretAccessKey", s.SecretAccessKey, &s.SecretKey}} {
			if c.raw == "" {
				continue
			}
			if v, ok := expandCredential(c.raw, f+"s3."+c.field, specFile, opts, bad, warn); ok {
				*c.out = v
			}
		}
	}
	if e := b.Encryption; e != nil {
		if len(e.Recipients) == 0 {
			bad(f+"encryption.recipients", "empty: list at least one age public key (age1...)")
		}
		for i, r := range e.Recipients {
			if _, err := age.ParseX25519Recipient(r); err != nil {
				bad(fmt.Sprintf("%sencryption.recipients[%d]", f, i), "%q is not an age public key (age1..., from age-keygen -y); never put the identity (AGE-SECRET-KEY-...) here", short(r))
			}
		}
	}
}

// short keeps a mistaken secret key out of messages.
func short(s string) string {
	if strings.HasPrefix(strings.ToUpper(s), "AGE-SECRET-KEY-") {
		return "AGE-SECRET-KEY-..."
	}
	return s
}
