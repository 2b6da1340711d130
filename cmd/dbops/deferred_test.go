package main_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

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
