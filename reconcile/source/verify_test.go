package source

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

func newKey(t *testing.T, name string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	must(t, err)
	return e
}

// armoredPublic returns the entity's public key as an armored block.
func armoredPublic(t *testing.T, e *openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	must(t, err)
	must(t, e.Serialize(w))
	must(t, w.Close())
	buf.WriteString("\n")
	return buf.Bytes()
}

func TestGitVerifyCommits(t *testing.T) {
	trusted, colleague, stranger := newKey(t, "trusted"), newKey(t, "colleague"), newKey(t, "stranger")
	ring := filepath.Join(t.TempDir(), "keys.asc")
	// Two armored blocks in one file, as `cat a.asc b.asc` makes.
	must(t, os.WriteFile(ring, append(armoredPublic(t, trusted), armoredPublic(t, colleague)...), 0o644))

	o := newOrigin(t)
	cache := t.TempDir()
	g, err := NewGit(GitOptions{URL: o.bare, Ref: "main", CacheDir: cache, VerifyKeyRing: ring})
	must(t, err)

	signed := o.commit(map[string]string{"app.yaml": "signed\n"}, trusted)
	good := fetch(t, g)
	if good.ID != signed {
		t.Fatalf("signed commit: ID %s, want %s", good.ID, signed)
	}
	wantFile(t, good.Path, "app.yaml", "signed\n")

	byColleague := o.commit(map[string]string{"app.yaml": "colleague\n"}, colleague)
	if r := fetch(t, g); r.ID != byColleague {
		t.Fatalf("commit by the second key of the ring: ID %s, want %s", r.ID, byColleague)
	}

	for _, c := range []struct {
		name string
		key  *openpgp.Entity
	}{{"unsigned", nil}, {"untrusted", stranger}} {
		name, key := c.name, c.key
		head := o.commit(map[string]string{"app.yaml": name + "\n"}, key)
		err := fetchErr(t, g)
		if !errors.Is(err, ErrUnverified) || !strings.Contains(err.Error(), head) {
			t.Fatalf("%s commit: err = %v, want ErrUnverified naming %s", name, err, head)
		}
		if _, err := os.Stat(filepath.Join(cache, "rev-"+head)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s commit was materialised (err %v)", name, err)
		}
	}
	// The last good snapshot is still whole.
	wantFile(t, good.Path, "app.yaml", "signed\n")

	// Without verification the same head is accepted.
	plain, err := NewGit(GitOptions{URL: o.bare, Ref: "main", CacheDir: t.TempDir()})
	must(t, err)
	wantFile(t, fetch(t, plain).Path, "app.yaml", "untrusted\n")
}

func TestGitVerifyKeyRingErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.asc")
	must(t, os.WriteFile(bad, []byte("not a key\n"), 0o644))
	garbled := filepath.Join(dir, "garbled.asc")
	must(t, os.WriteFile(garbled, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n"), 0o644))
	for _, ring := range []string{filepath.Join(dir, "missing.asc"), bad, garbled} {
		_, err := NewGit(GitOptions{URL: "https://example.com/r.git", Ref: "main", CacheDir: dir, VerifyKeyRing: ring})
		if err == nil || !strings.Contains(err.Error(), ring) {
			t.Fatalf("key ring %s: err = %v, want an error naming the file", ring, err)
		}
	}
}
