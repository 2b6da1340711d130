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
	}{
		{name: "slack defaults to failures and all stacks",
			spec: "type: slack\n  url: ${SLACK_URL}",
			want: NotificationSpec{Type: "slack", URL: "https://hooks.slack.test/T000/B000/slack-secret-path", Events: []string{"failed", "rejected", "backupFailed"}}},
		{name: "webhook with a file secret",
			spec: "type: webhook\n  url: http://127.0.0.1:9/hook\n  secret: ${file:hmac}\n  events: [applied]\n  stacks: [shop]",
			want: NotificationSpec{Type: "webhook", URL: "http://127.0.0.1:9/hook", Secret: "file-hmac-key-0001", Events: []string{"applied"}, Stacks: []string{"shop"}}},
		{name: "unset variable",
			spec:    "type: webhook\n  url: ${NOT_SET_ANYWHERE}",
			wantErr: `notification "ops": spec.url: environment variable NOT_SET_ANYWHERE is not set`},
		{name: "duplicate name",
			spec:    "type: webhook\n  url: http://a.test/\n---\napiVersion: dbops/v1\nkind: Notification\nmetadata: {name: ops}\nspec: {type: webhook, url: 'http://b.test/'}",
			wantErr: `notification "ops": metadata.name: duplicate notification name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(dir, "n.yaml")
			doc := stack + "apiVersion: dbops/v1\nkind: Notification\nmetadata: {name: ops}\nspec:\n  " + tt.spec + "\n"
			if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			res, err := Load([]string{f}, Options{Getenv: env(map[string]string{"SLACK_URL": "https://hooks.slack.test/T000/B000/slack-secret-path"})})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "n.yaml: ") {
					t.Fatalf("err = %v, want one naming the file and containing %q", err, tt.wantErr)
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
				!slices.Equal(got.Events, tt.want.Events) || !slices.Equal(got.Stacks, tt.want.Stacks) {
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
