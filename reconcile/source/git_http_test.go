package source

import (
	"errors"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// tokenServer serves the bare repositories in root over smart HTTP with
// `git http-backend`, to clients sending basic auth user "git" and the token.
type tokenServer struct {
	mu    sync.Mutex
	token string
	srv   *httptest.Server
}

func newTokenServer(t *testing.T, root, token string) *tokenServer {
	t.Helper()
	gitBin := "/usr/bin/git"
	if _, err := os.Stat(gitBin); err != nil {
		t.Fatalf("git http-backend is needed: %v", err)
	}
	backend := &cgi.Handler{
		Path: gitBin,
		Args: []string{"http-backend"},
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	s := &tokenServer{token: token}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		s.mu.Lock()
		good := ok && user == "git" && pass == s.token
		s.mu.Unlock()
		if !good {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *tokenServer) setToken(tok string) {
	s.mu.Lock()
	s.token = tok
	s.mu.Unlock()
}

func TestGitHTTPSToken(t *testing.T) {
	const token = "ghp_TopSecretToken123"
	o := newOrigin(t)
	head := o.commit(map[string]string{"stacks/app.yaml": "over http\n"}, nil)
	srv := newTokenServer(t, filepath.Dir(o.bare), token)
	url := srv.srv.URL + "/" + filepath.Base(o.bare)

	noSecret := func(t *testing.T, err error, secrets ...string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Fatalf("error shows a credential: %v", err)
			}
		}
		if !strings.Contains(err.Error(), "git fetch") || !strings.Contains(err.Error(), "(ref main)") {
			t.Fatalf("error %q lacks its context", err)
		}
	}

	t.Run("missing token", func(t *testing.T) {
		g, err := NewGit(GitOptions{URL: url, Ref: "main", CacheDir: t.TempDir()})
		must(t, err)
		err = fetchErr(t, g)
		noSecret(t, err, token)
		if !errors.Is(err, transport.ErrAuthenticationRequired) {
			t.Fatalf("err = %v, want ErrAuthenticationRequired in its chain", err)
		}
		if !strings.Contains(err.Error(), "the server answered HTTP 401 (authentication required): no credentials were sent: give --token-env or --token-file") {
			t.Errorf("err = %q, want it to say plainly HTTP 401 and that no token was sent", err)
		}
	})
	t.Run("unset token variable", func(t *testing.T) {
		g, err := NewGit(GitOptions{URL: url, Ref: "main", CacheDir: t.TempDir(), TokenEnv: "DBOPS_TEST_UNSET_TOKEN"})
		must(t, err)
		if err := fetchErr(t, g); !strings.Contains(err.Error(), "DBOPS_TEST_UNSET_TOKEN") {
			t.Fatalf("error %q should name the variable", err)
		}
	})
	t.Run("empty token variable", func(t *testing.T) {
		t.Setenv("DBOPS_TEST_EMPTY_TOKEN", "")
		g, err := NewGit(GitOptions{URL: url, Ref: "main", CacheDir: t.TempDir(), TokenEnv: "DBOPS_TEST_EMPTY_TOKEN"})
		must(t, err)
		if err := fetchErr(t, g); !strings.Contains(err.Error(), "environment variable DBOPS_TEST_EMPTY_TOKEN is not set or empty") {
			t.Fatalf("error %q should name the empty variable", err)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		const wrong = "ghp_WrongToken456"
		t.Setenv("DBOPS_TEST_TOKEN", wrong)
		g, err := NewGit(GitOptions{URL: url, Ref: "main", CacheDir: t.TempDir(), TokenEnv: "DBOPS_TEST_TOKEN"})
		must(t, err)
		err = fetchErr(t, g)
		noSecret(t, err, token, wrong)
		if !strings.Contains(err.Error(), "the server answered HTTP 401 (authentication required): the token from environment variable DBOPS_TEST_TOKEN was refused") {
			t.Errorf("err = %q, want it to say HTTP 401 and which token was refused", err)
		}
	})
	t.Run("password in URL", func(t *testing.T) {
		const wrong = "hunter2pass"
		u := strings.Replace(url, "://", "://git:"+wrong+"@", 1)
		g, err := NewGit(GitOptions{URL: u, Ref: "main", CacheDir: t.TempDir()})
		must(t, err)
		err = fetchErr(t, g)
		noSecret(t, err, wrong)
		if !strings.Contains(err.Error(), "git:xxxxx@") {
			t.Fatalf("error %q should show the URL redacted", err)
		}
		// The right password in the URL works, and is not stored in the clone.
		cache := t.TempDir()
		g, err = NewGit(GitOptions{URL: strings.Replace(url, "://", "://git:"+token+"@", 1), Ref: "main", CacheDir: cache})
		must(t, err)
		if r := fetch(t, g); r.ID != head {
			t.Fatalf("ID %s, want %s", r.ID, head)
		}
		b, err := os.ReadFile(filepath.Join(cache, repoDir, "config"))
		must(t, err)
		if strings.Contains(string(b), token) {
			t.Fatalf("the clone's config holds the password:\n%s", b)
		}
	})
	t.Run("token from env", func(t *testing.T) {
		t.Setenv("DBOPS_TEST_TOKEN", token)
		g, err := NewGit(GitOptions{URL: url, Ref: "main", Path: "stacks", CacheDir: t.TempDir(), TokenEnv: "DBOPS_TEST_TOKEN"})
		must(t, err)
		r := fetch(t, g)
		if r.ID != head {
			t.Fatalf("ID %s, want %s", r.ID, head)
		}
		wantFile(t, r.Path, "app.yaml", "over http\n")
	})
	t.Run("token from file, rotated", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "token")
		must(t, os.WriteFile(file, []byte(token+"\n"), 0o600))
		g, err := NewGit(GitOptions{URL: url, Ref: "main", CacheDir: t.TempDir(), TokenFile: file, TokenUser: "git"})
		must(t, err)
		if r := fetch(t, g); r.ID != head {
			t.Fatalf("ID %s, want %s", r.ID, head)
		}
		const rotated = "ghp_RotatedToken789"
		srv.setToken(rotated)
		defer srv.setToken(token)
		noSecret(t, fetchErr(t, g), token, rotated)
		must(t, os.WriteFile(file, []byte(rotated), 0o600))
		next := o.commit(map[string]string{"stacks/app.yaml": "rotated\n"}, nil)
		r := fetch(t, g)
		if r.ID != next {
			t.Fatalf("after rotation: ID %s, want %s", r.ID, next)
		}
		wantFile(t, r.Path, "stacks/app.yaml", "rotated\n")
	})
}
