package loop

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile/source"
)

// commitSigned commits files signed with key (unsigned when nil).
func (r *repo) commitSigned(files map[string]string, key *openpgp.Entity) string {
	r.t.Helper()
	for name, body := range files {
		os.WriteFile(filepath.Join(r.dir, name), []byte(body), 0o644)
	}
	wt, _ := r.repo.Worktree()
	wt.AddWithOptions(&git.AddOptions{All: true})
	sig := &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}
	h, err := wt.Commit("change", &git.CommitOptions{Author: sig, Committer: sig, SignKey: key})
	if err != nil {
		r.t.Fatal(err)
	}
	return h.String()
}

func TestVerifyCommitsRejectsUntrustedRevisions(t *testing.T) {
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	c := rd.Client(t)
	trusted, _ := openpgp.NewEntity("ops", "", "ops@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	stranger, _ := openpgp.NewEntity("x", "", "x@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	var ring bytes.Buffer
	w, _ := armor.Encode(&ring, openpgp.PublicKeyType, nil)
	trusted.Serialize(w)
	w.Close()
	ringFile := filepath.Join(t.TempDir(), "trusted.asc")
	os.WriteFile(ringFile, ring.Bytes(), 0o644)

	r := newRepo(t)
	good := r.commitSigned(map[string]string{"a.yaml": redisStack("cache", rd.URL(), "64mb", "")}, trusted)
	src, err := source.NewGit(source.GitOptions{URL: r.dir, Ref: "main", CacheDir: t.TempDir(), VerifyKeyRing: ringFile})
	if err != nil {
		t.Fatal(err)
	}
	var logs testsrv.Buffer
	l := newLoop(t, src, &logs)
	cycle(t, l)
	if testsrv.ConfigGet(t, c, "maxmemory") != "67108864" {
		t.Fatal("a commit signed by a trusted key was not applied")
	}
	for i, tc := range []struct {
		name string
		key  *openpgp.Entity
	}{{"unsigned", nil}, {"untrusted", stranger}} {
		name := tc.name
		bad := r.commitSigned(map[string]string{"a.yaml": redisStack("cache", rd.URL(), fmt.Sprintf("%dmb", 8+i), "")}, tc.key)
		cycle(t, l)
		st := l.Status()
		if st.Revision.ID != good || st.Rejected == nil || st.Rejected.ID != bad ||
			!strings.Contains(strings.Join(st.Rejected.Errors, " "), "not signed by a trusted key") {
			t.Errorf("%s commit: revision %s, rejected %+v", name, st.Revision.ID, st.Rejected)
		}
		if testsrv.ConfigGet(t, c, "maxmemory") != "67108864" {
			t.Errorf("%s commit applied", name)
		}
		// Seen again: not logged again, and its time of rejection stays.
		cycle(t, l)
		cycle(t, l)
		if again := l.Status(); again.Rejected == nil || !again.Rejected.At.Equal(st.Rejected.At) {
			t.Errorf("%s commit: rejected.at moved from %v to %+v", name, st.Rejected.At, again.Rejected)
		}
		n := 0
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, bad) && !strings.Contains(line, `"level":"DEBUG"`) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s commit %s logged %d times, want once:\n%s", name, bad, n, logs.String())
		}
	}
}
