package loop

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/amanat/dbops/spec"
)

// TestStatusMasksSecrets: /status goes through spec.Mask like logs and
// notifications do, so a registered secret inside an error (a fetch error,
// a stack's condition message) is never served.
func TestStatusMasksSecrets(t *testing.T) {
	tests := []struct{ name, secret string }{
		{"plain", "statusSecretPlain0123"},
		{"html characters JSON would escape", "statusSecret&<Amp>4567"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec.RegisterSecrets(tc.secret)
			l := New(Options{})
			l.mu.Lock()
			l.lastErr = "fetch failed: authentication with " + tc.secret + " refused"
			l.rejected = &Rejection{ID: "r1", Errors: []string{"bad token " + tc.secret}}
			l.mu.Unlock()
			rec := httptest.NewRecorder()
			l.Handler(HandlerOptions{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status", nil))
			body := rec.Body.String()
			if rec.Code != http.StatusOK || !strings.Contains(body, "authentication with") {
				t.Fatalf("/status = %d %q, want 200 with the fetch error", rec.Code, body)
			}
			if strings.Contains(body, tc.secret) || !strings.Contains(body, "xxxxx") {
				t.Fatalf("/status does not mask the secret:\n%s", body)
			}
		})
	}
}
