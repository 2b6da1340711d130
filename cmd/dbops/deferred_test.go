package main_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
)

// TestApplyExitStatusDeferred: apply exits 3 when nothing failed but a risky
// change waits for a maintenance window (README's table), 0 when all of it
// applied with --allow-risky.
func TestApplyExitStatusDeferred(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		appendonly string
	}{
		{"deferred to the window", nil, 3, "yes"},
		{"allow risky", []string{"--allow-risky"}, 0, "no"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
			c := rd.Client(t)
			c.ConfigSet(context.Background(), "appendonly", "yes")
			// A window twelve hours away: never open while the test runs.
			at := time.Now().UTC().Add(12 * time.Hour)
			f := clitest.NewFixture(t, nil)
			f.Env["REDIS_URL"] = rd.URL()
			f.Write(t, "stack.yaml", clitest.StackYAML("cache", fmt.Sprintf("  maintenanceWindows: [{start: \"%d %d * * *\", duration: 1h}]\n", at.Minute(), at.Hour())+
				"  redis:\n    url: ${REDIS_URL}\n    config: {appendonly: \"no\", hz: \"20\"}\n"))
			res := f.Run(t, append([]string{"apply", "--auto-approve", f.Dir}, tt.args...)...)
			if res.Code != tt.wantCode {
				t.Errorf("exit %d, want %d\n%s\n%s", res.Code, tt.wantCode, res.Stdout, res.Stderr)
			}
			if got := testsrv.ConfigGet(t, c, "hz"); got != "20" {
				t.Errorf("the safe change was not applied: hz=%s", got)
			}
			if got := testsrv.ConfigGet(t, c, "appendonly"); got != tt.appendonly {
				t.Errorf("appendonly=%s, want %s", got, tt.appendonly)
			}
			if tt.wantCode == 3 && !strings.Contains(res.Stderr, "1 risky change(s) deferred to the next maintenance window") {
				t.Errorf("stderr does not say what was deferred:\n%s", res.Stderr)
			}
		})
	}
}

// TestValidateCommitStatusRepository: a github receiver without repository
// takes it from the origin remote of the work tree holding the files, and
// is refused, naming file, notification and field, when there is none.
func TestValidateCommitStatusRepository(t *testing.T) {
	tests := []struct {
		name, origin string
		wantCode     int
		wantErr      string
	}{
		{"origin on GitHub", "git@github.com:acme/infra.git", 0, ""},
		{"no origin remote", "", 1, `notification "status": spec.repository: not set, and the repository URL is not known here`},
		{"origin is a local path", "/srv/git/infra", 1, `spec.repository: not set, and the repository URL /srv/git/infra does not name a hosted repository: set repository: OWNER/NAME`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := clitest.NewFixture(t, nil)
			if tt.origin != "" {
				// The fixture is a git work tree (the repository root).
				r, err := git.PlainOpenWithOptions(f.Dir, &git.PlainOpenOptions{DetectDotGit: true})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := r.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{tt.origin}}); err != nil {
					t.Fatal(err)
				}
			}
			f.Env["GITHUB_TOKEN"] = "status-token-0007"
			f.Write(t, "stack.yaml", clitest.StackYAML("cache", "  redis:\n    url: redis://127.0.0.1:1/0\n")+
				"---\napiVersion: dbops/v1\nkind: Notification\nmetadata: {name: status}\nspec:\n  type: github\n  token: ${GITHUB_TOKEN}\n")
			res := f.Run(t, "validate", f.Dir)
			if res.Code != tt.wantCode || !strings.Contains(res.Stderr, tt.wantErr) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", res.Code, res.Stderr, tt.wantCode, tt.wantErr)
			}
			if tt.wantErr != "" && !strings.Contains(res.Stderr, "stack.yaml") {
				t.Errorf("the error does not name the file:\n%s", res.Stderr)
			}
		})
	}
}
