// Package rulecheck checks the monitoring examples: the alerting rules
// parse with Prometheus' own rule parser (as promtool check rules does),
// every PromQL expression of the rules and of the Grafana dashboard parses,
// and every dbops_ metric they name is one dbops exports
// (reconcile/loop/metrics.go). A module of its own, so dbops' go.mod does
// not carry Prometheus; `make test` runs it.
package rulecheck

import (
	"encoding/json"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// promql is Prometheus' parser with its default options, as promtool uses it.
var promql = parser.NewParser(parser.Options{})

// exported reads the metric names dbops registers.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	src, err := os.ReadFile("../../../reconcile/loop/metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{"up": true} // Prometheus' own, per scrape target
	for _, m := range regexp.MustCompile(`Name:\s*"(dbops_[a-z_]+)"`).FindAllSubmatch(src, -1) {
		names[string(m[1])] = true
	}
	if len(names) < 10 {
		t.Fatalf("found only %d metric names in reconcile/loop/metrics.go: has its form changed?", len(names))
	}
	return names
}

// metricsIn parses expr and returns the metric names it selects.
func metricsIn(t *testing.T, expr string) []string {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %v", expr, err)
		return nil
	}
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs.Name)
		}
		return nil
	})
	if len(out) == 0 {
		t.Errorf("%s selects no metric", expr)
	}
	return out
}

// known accepts a histogram's series as its name.
func known(names map[string]bool, m string) bool {
	for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(m, suffix); ok && names[base] {
			return true
		}
	}
	return false
}

func TestAlertingRules(t *testing.T) {
	names := exported(t)
	groups, errs := rulefmt.ParseFile("../alerts.yaml", false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if groups == nil {
		t.Fatal("no rule groups")
	}
	alerts := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			t.Run(r.Alert, func(t *testing.T) {
				if r.Alert == "" {
					t.Fatalf("rule %q is not an alert", r.Expr)
				}
				alerts++
				for _, m := range metricsIn(t, r.Expr) {
					if !known(names, m) {
						t.Errorf("%s: dbops exports no metric %s", r.Alert, m)
					}
				}
				if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
					t.Errorf("%s: needs a severity label and a summary", r.Alert)
				}
			})
		}
	}
	if alerts < 5 {
		t.Errorf("%d alerts", alerts)
	}
}

func TestDashboard(t *testing.T) {
	names := exported(t)
	b, err := os.ReadFile("../grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	// Grafana's variables, replaced as Grafana would before querying.
	vars := strings.NewReplacer("$__rate_interval", "5m", "$stack", ".*")
	used := map[string]bool{}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			for _, m := range metricsIn(t, vars.Replace(q.Expr)) {
				used[m] = true
				if !known(names, m) {
					t.Errorf("panel %q: dbops exports no metric %s", p.Title, m)
				}
			}
		}
	}
	// What the issue asks the dashboard to show.
	for _, m := range []string{"dbops_reconcile_duration_seconds_bucket", "dbops_drift_resources", "dbops_reconcile_failures_total",
		"dbops_last_successful_reconcile_timestamp_seconds", "dbops_backup_last_success_timestamp_seconds", "dbops_backup_size_bytes",
		"dbops_backup_failures_total"} {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}
