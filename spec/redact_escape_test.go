package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// A registered secret is masked however the output format escaped it: a
// password with a quote, backslash, newline or <>& reads differently in
// JSON (/status, --format json, --log-format json), in /metrics label
// values and in %q error texts, and Mask compares bytes.
func TestMaskEscapedSecrets(t *testing.T) {
	secrets := []string{`pa"ss`, `back\slash`, "new\nline", `<tag>&amp`, "tab\there", `mixé"\<`}
	RegisterSecrets(secrets...)
	for _, sec := range secrets {
		var logged bytes.Buffer
		slog.New(slog.NewJSONHandler(&logged, nil)).Info("cycle", "error", "cannot connect as "+sec)
		marshalled, err := json.Marshal(map[string]string{"error": "cannot connect as " + sec})
		if err != nil {
			t.Fatal(err)
		}
		var noHTML bytes.Buffer
		enc := json.NewEncoder(&noHTML)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(map[string]string{"error": sec}); err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dbops_test", Help: "h"}, []string{"error"})
		g.WithLabelValues("x " + sec).Set(1)
		reg.MustRegister(g)
		rec := httptest.NewRecorder()
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))

		outputs := map[string]string{
			"slog JSON":     logged.String(),
			"json.Marshal":  string(marshalled),
			"JSON, no HTML": noHTML.String(),
			"/metrics":      rec.Body.String(),
			"%q":            fmt.Sprintf("error %q", sec),
			"raw":           "error " + sec,
		}
		for name, out := range outputs {
			masked := Mask(out)
			if !strings.Contains(masked, "xxxxx") {
				t.Errorf("%s of %q not masked:\n%s", name, sec, masked)
			}
			for _, form := range spellings(sec) {
				if strings.Contains(masked, form) {
					t.Errorf("%s of %q still holds %q after Mask:\n%s", name, sec, form, masked)
				}
			}
		}
	}
}
