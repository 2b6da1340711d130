package render

import (
	"fmt"
	"io"
	"strings"

	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/drift"
)

// driftLine is one drift item on one line: a long or multi-line definition
// (a function body, a view) is not repeated; `dbops drift` shows both.
func driftLine(it drift.Item) string {
	if it.Change == drift.Changed && (strings.Contains(it.Live+it.Expected, "\n") || len(it.Live)+len(it.Expected) > 160) {
		return fmt.Sprintf("%s %s: definition differs live (dbops drift shows both)", it.Kind, it.Name)
	}
	return it.String()
}

// driftHead says what was compared and where the expected schema came from.
func driftHead(d *reconcile.DriftStatus) string {
	from := "replayed in a scratch database"
	if d.Expected == drift.FromCache {
		from = "from the cache"
	}
	return fmt.Sprintf("level %s, %d objects compared, expected schema %s, policy %s", d.Level, d.Objects, from, d.Policy)
}

// writeDriftText prints a stack's schema drift, when plan checked it.
func writeDriftText(w io.Writer, d *reconcile.DriftStatus, s Style) {
	if d == nil {
		return
	}
	switch {
	case d.Error != "":
		fmt.Fprintf(w, "  schema drift: %s %s\n", s.yellow("not checked:"), d.Error)
	case len(d.Items) == 0:
		fmt.Fprintf(w, "  schema drift: %s (%s)\n", s.green("none"), driftHead(d))
	default:
		fmt.Fprintf(w, "  schema drift: %s (%s):\n", s.yellow(fmt.Sprintf("%d object(s) differ from the migrations", len(d.Items))), driftHead(d))
		for _, it := range d.Items {
			fmt.Fprintf(w, "    %s %s\n", s.yellow("!"), driftLine(it))
		}
	}
}

// writeDriftMarkdown renders a stack's schema drift as a table.
func writeDriftMarkdown(w io.Writer, stack string, d *reconcile.DriftStatus) {
	if d == nil {
		return
	}
	switch {
	case d.Error != "":
		fmt.Fprintf(w, "\n> ⚠️ **schema drift not checked**: %s\n", cell(d.Error))
	case len(d.Items) == 0:
		fmt.Fprintf(w, "\nSchema drift: none (%s).\n", driftHead(d))
	default:
		fmt.Fprintf(w, "\n**Schema drift**: %d object(s) differ from the migrations (%s). dbops never corrects them; `dbops drift %s PATH --sql` shows the SQL to review.\n\n",
			len(d.Items), driftHead(d), stack)
		fmt.Fprintln(w, "| Object | Drift | Live | Expected |")
		fmt.Fprintln(w, "|---|---|---|---|")
		for _, it := range d.Items {
			live, exp := code(it.Live), code(it.Expected)
			if it.Change != drift.Changed || driftLine(it) != it.String() {
				live, exp = optional(it.Live), optional(it.Expected)
			}
			fmt.Fprintf(w, "| %s `%s` | %s | %s | %s |\n", it.Kind, cell(it.Name), it.Change, live, exp)
		}
	}
}

// optional is a definition cell: empty for none, shortened when long.
func optional(def string) string {
	if def == "" {
		return ""
	}
	if strings.Contains(def, "\n") || len(def) > 80 {
		return "(long: see `dbops drift`)"
	}
	return code(def)
}
