package spec

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLoadNotification(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "hmac")
	if err := os.WriteFile(secretFile, []byte("file-hmac-key-0001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const stack = "apiVersion: dbops/v1\nkind: Stack\nmetadata: {name: shop}\nspec:\n  redis: {url: redis://cache:6379/0}\n---\n"
	tests := []struct {
		name, spec string
		want       NotificationSpec
		wantErr    string
		notInErr   string // a secret the error must not show
	}{
		{name: "slack defaults to failures and all stacks",
			spec: "type: slack\n  url: ${SLACK_URL}",
			want: NotificationSpec{Type: "slack", URL: "https://hooks.slack.test/T000/B000/slack-secret-path", Events: []string{"failed", "rejected", "backupFailed", "verificationFailed"}, FailureThreshold: 1}},
		{name: "webhook with a file secret",
			spec: "type: webhook\n  url: http://127.0.0.1:9/hook\n  secret: ${file:hmac}\n  events: [applied]\n  stacks: [shop]",
			want: NotificationSpec{Type: "webhook", URL: "http://127.0.0.1:9/hook", Secret: "file-hmac-key-0001", Events: []string{"applied"}, Stacks: []string{"shop"}, FailureThreshold: 1}},
		{name: "failure threshold",
			spec: "type: webhook\n  url: http://127.0.0.1:9/hook\n  failureThreshold: 3",
			want: NotificationSpec{Type: "webhook", URL: "http://127.0.0.1:9/hook", Events: DefaultEvents, FailureThreshold: 3}},
		{name: "failure threshold below 1",
			spec:    "type: webhook\n  url: http://127.0.0.1:9/hook\n  failureThreshold: 0",
			wantErr: `spec.failureThreshold`},
		{name: "unset variable",
			spec:    "type: webhook\n  url: ${NOT_SET_ANYWHERE}",
			wantErr: `notification "ops": spec.url: environment variable NOT_SET_ANYWHERE is not set`},
		{name: "duplicate name",
			spec:    "type: webhook\n  url: http://a.test/\n---\napiVersion: dbops/v1\nkind: Notification\nmetadata: {name: ops}\nspec: {type: webhook, url: 'http://b.test/'}",
			wantErr: `notification "ops": metadata.name: duplicate notification name`},
		{name: "unparsable url is not echoed",
			spec:     "type: slack\n  url: ${BAD_SLACK_URL}",
			wantErr:  `notification "ops": spec.url: not a URL`,
			notInErr: "leaky-secret-path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(dir, "n.yaml")
			doc := stack + "apiVersion: dbops/v1\nkind: Notification\nmetadata: {name: ops}\nspec:\n  " + tt.spec + "\n"
			if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			res, err := Load([]string{f}, Options{Getenv: env(map[string]string{
				"SLACK_URL":     "https://hooks.slack.test/T000/B000/slack-secret-path",
				"BAD_SLACK_URL": "https://hooks.slack.test/T000/B000/leaky-secret-path%zz",
			})})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "n.yaml: ") {
					t.Fatalf("err = %v, want one naming the file and containing %q", err, tt.wantErr)
				}
				if tt.notInErr != "" && strings.Contains(err.Error(), tt.notInErr) {
					t.Errorf("err = %v, shows the secret %q", err, tt.notInErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Notifications) != 1 || len(res.Stacks) != 1 {
				t.Fatalf("loaded %d notifications, %d stacks; want 1 and 1", len(res.Notifications), len(res.Stacks))
			}
			got := res.Notifications[0].Spec
			if got.Type != tt.want.Type || got.URL != tt.want.URL || got.Secret != tt.want.Secret ||
				!slices.Equal(got.Events, tt.want.Events) || !slices.Equal(got.Stacks, tt.want.Stacks) || got.FailureThreshold != tt.want.FailureThreshold {
				t.Errorf("spec = %+v, want %+v", got, tt.want)
			}
			// Expanded credentials are masked wherever dbops prints.
			for _, s := range []string{got.URL, got.Secret} {
				if s != "" && strings.Contains(Mask("x "+s+" y"), s) {
					t.Errorf("%q is not registered as a secret", s)
				}
			}
		})
	}
}

func TestNotificationWants(t *testing.T) {
	n := Notification{Spec: NotificationSpec{Events: []string{"failed"}, Stacks: []string{"a"}}}
	all := Notification{Spec: NotificationSpec{Events: []string{"applied", "failed"}}}
	tests := []struct {
		n            *Notification
		event, stack string
		want         bool
	}{
		{&n, "failed", "a", true},
		{&n, "failed", "b", false},
		{&n, "applied", "a", false},
		{&all, "applied", "zzz", true},
		{&all, "drift", "zzz", false},
	}
	for _, tt := range tests {
		if got := tt.n.Wants(tt.event, tt.stack); got != tt.want {
			t.Errorf("Wants(%s, %s) = %v, want %v", tt.event, tt.stack, got, tt.want)
		}
	}
}

func TestParseRepoURL(t *testing.T) {
	tests := []struct {
		raw  string
		want RepoLocation
		ok   bool
	}{
		{"https://github.com/acme/infra.git", RepoLocation{"https", "github.com", "acme/infra"}, true},
		{"https://x-access-token:tok@github.com/acme/infra", RepoLocation{"https", "github.com", "acme/infra"}, true},
		{"git@github.com:acme/infra.git", RepoLocation{"https", "github.com", "acme/infra"}, true},
		{"ssh://git@gitlab.example.com:2222/group/sub/proj.git", RepoLocation{"https", "gitlab.example.com", "group/sub/proj"}, true},
		{"http://127.0.0.1:8080/a/b/", RepoLocation{"http", "127.0.0.1:8080", "a/b"}, true},
		{"/srv/git/infra", RepoLocation{}, false},
		{"file:///srv/git/acme/infra", RepoLocation{}, false},
		{"https://github.com/acme", RepoLocation{}, false},
		{"./infra", RepoLocation{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseRepoURL(tt.raw)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("ParseRepoURL(%q) = %+v, %v; want %+v, %v", tt.raw, got, ok, tt.want, tt.ok)
		}
	}
}

// TestCommitStatusDefaults: github/gitlab receivers take repository/project
// and the API of the repository's host from the repository URL, and say
// plainly when neither is set nor derivable.
func TestCommitStatusDefaults(t *testing.T) {
	dir := t.TempDir()
	const stack = "apiVersion: dbops/v1\nkind: Stack\nmetadata: {name: shop}\nspec:\n  redis: {url: redis://cache:6379/0}\n---\n"
	tests := []struct {
		name, spec, repoURL        string
		wantRepo, wantAPI, wantErr string
	}{
		{name: "github from an https URL", spec: "type: github", repoURL: "https://github.com/acme/infra.git",
			wantRepo: "acme/infra", wantAPI: "https://api.github.com"},
		{name: "github enterprise from an scp URL", spec: "type: github", repoURL: "git@ghe.example.com:acme/infra.git",
			wantRepo: "acme/infra", wantAPI: "https://ghe.example.com/api/v3"},
		{name: "github set explicitly", spec: "type: github\n  repository: other/repo\n  apiURL: http://127.0.0.1:1/api/", repoURL: "/srv/git/infra",
			wantRepo: "other/repo", wantAPI: "http://127.0.0.1:1/api"},
		{name: "github set, public API", spec: "type: github\n  repository: other/repo", repoURL: "",
			wantRepo: "other/repo", wantAPI: "https://api.github.com"},
		{name: "gitlab subgroup from ssh", spec: "type: gitlab", repoURL: "ssh://git@gitlab.example.com:2222/group/sub/proj.git",
			wantRepo: "group/sub/proj", wantAPI: "https://gitlab.example.com/api/v4"},
		{name: "gitlab set explicitly", spec: "type: gitlab\n  project: \"1234\"", repoURL: "",
			wantRepo: "1234", wantAPI: "https://gitlab.com/api/v4"},
		{name: "github without repository and no URL", spec: "type: github", repoURL: "",
			wantErr: `notification "ops": spec.repository: not set, and the repository URL is not known here`},
		{name: "github from a local path", spec: "type: github", repoURL: "/srv/git/infra",
			wantErr: `spec.repository: not set, and the repository URL /srv/git/infra does not name a hosted repository: set repository: OWNER/NAME`},
		{name: "github from a subgroup URL", spec: "type: github", repoURL: "https://gitlab.com/g/s/p.git",
			wantErr: `spec.repository: not set, and https://gitlab.com/g/s/p.git is not OWNER/NAME on GitHub`},
		{name: "gitlab without project", spec: "type: gitlab", repoURL: "",
			wantErr: `spec.project: not set`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(dir, "n.yaml")
			doc := stack + "apiVersion: dbops/v1\nkind: Notification\nmetadata: {name: ops}\nspec:\n  token: ${TOK}\n  " + tt.spec + "\n"
			if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			res, err := Load([]string{f}, Options{RepoURL: tt.repoURL, Getenv: env(map[string]string{"TOK": "status-token-0001"})})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := res.Notifications[0].Spec
			got := s.Repository + s.Project
			if got != tt.wantRepo || s.APIURL != tt.wantAPI || s.Token != "status-token-0001" {
				t.Errorf("repository/project %q api %q token %q; want %q %q", got, s.APIURL, s.Token, tt.wantRepo, tt.wantAPI)
			}
		})
	}
}
