package loop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/amanat/dbops/spec"
)

// Status returns a snapshot of what the loop knows.
func (l *Loop) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := Status{Rejected: l.rejected, LastFetch: l.lastTry, FetchError: l.lastErr, Stacks: []StackStatus{},
		Shard: ShardStatus{Index: l.o.Shard.Index, Count: l.o.Shard.Count, Owned: []string{}}}
	if l.current != nil {
		st.Revision = &RevisionStatus{ID: l.current.ID, LoadedAt: l.current.loadedAt}
		st.Shard.Total = l.current.total
		for _, s := range l.current.stacks {
			st.Shard.Owned = append(st.Shard.Owned, s.Metadata.Name)
			ss := StackStatus{Name: s.Metadata.Name, Suspended: s.Spec.Suspend, DriftPolicy: string(s.Spec.DriftPolicy)}
			if known := l.stacks[s.Metadata.Name]; known != nil && (known.running || !known.status.LastCycle.IsZero()) {
				ss = known.status
			}
			if ss.Resources == nil {
				ss.Resources = []ResourceStatus{}
			}
			ss.Backups = l.backupStatus(&s)
			ss.SchemaDrift = l.schemaDriftStatus(s.Metadata.Name)
			st.Stacks = append(st.Stacks, ss)
		}
	}
	return st
}

// Ready reports whether this process is serving: a good revision is
// loaded. Stacks failing (a database outage) are stack conditions in
// /status and metrics, not a failing readiness probe: that would stall a
// Kubernetes rollout of dbops over an outage it cannot fix.
func (l *Loop) Ready() (bool, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.current == nil {
		if l.rejected != nil {
			return false, "no valid revision yet; newest rejected: " + l.rejected.ID
		}
		return false, "no revision loaded yet"
	}
	return true, "ok: revision " + l.current.ID + " in force"
}

// HandlerOptions configure the HTTP endpoints.
type HandlerOptions struct {
	// WebhookSecret authenticates POST /hooks/git (GitHub's
	// X-Hub-Signature-256). When empty every webhook is refused.
	WebhookSecret []byte
}

// Handler serves /healthz, /readyz, /metrics, /status and POST /hooks/git.
func (l *Loop) Handler(o HandlerOptions) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ok, why := l.Ready()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		io.WriteString(w, why+"\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(l.o.Metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		// Errors in /status can quote what a server or remote said: masked
		// like logs and notifications. No HTML escaping, so a secret with
		// '&', '<' or '>' is served as written and so masked.
		enc := json.NewEncoder(spec.MaskWriter(w))
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		enc.Encode(l.Status())
	})
	mux.HandleFunc("POST /hooks/git", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if !validSignature(o.WebhookSecret, body, r.Header.Get("X-Hub-Signature-256")) {
			l.o.Logger.Warn("webhook refused: bad or missing X-Hub-Signature-256", "remote", r.RemoteAddr)
			http.Error(w, "unauthenticated: X-Hub-Signature-256 must be the HMAC-SHA256 of the body with the shared secret", http.StatusUnauthorized)
			return
		}
		l.Trigger()
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "fetch triggered\n")
	})
	return mux
}

// validSignature checks GitHub's "sha256=<hex HMAC of body>" in constant time.
func validSignature(secret, body []byte, header string) bool {
	if len(secret) == 0 {
		return false
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}
