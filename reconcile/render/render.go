// Package render prints plans and apply results for people: text, with
// optional colour, and markdown for pull request comments. JSON output is
// the plan itself (schemas/plan.schema.json).
package render

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/amanat/dbops/reconcile"
)

// Style adds colour to text output; the zero value adds none.
type Style struct{ Color bool }

func (s Style) paint(code, text string) string {
	if !s.Color {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

func (s Style) green(t string) string  { return s.paint("32", t) }
func (s Style) yellow(t string) string { return s.paint("33", t) }
func (s Style) red(t string) string    { return s.paint("31", t) }
func (s Style) bold(t string) string   { return s.paint("1", t) }

var symbols = map[reconcile.Action]string{reconcile.ActionUpdate: "~", reconcile.ActionUp: "+", reconcile.ActionDown: "-", reconcile.ActionBackup: "+", reconcile.ActionDelete: "-", reconcile.ActionRecord: "+", reconcile.ActionBaseline: "=", reconcile.ActionCreate: "+", reconcile.ActionDrop: "-", reconcile.ActionReset: "~"}

func (s Style) action(a reconcile.Action) string {
	switch a {
	case reconcile.ActionUp, reconcile.ActionBackup, reconcile.ActionCreate:
		return s.green(symbols[a])
	case reconcile.ActionDown, reconcile.ActionDelete, reconcile.ActionDrop:
		return s.red(symbols[a])
	}
	return s.yellow(symbols[a])
}

// PlanText prints the plan for a person: per stack, each change as
// before → after, then a one-line summary.
func PlanText(w io.Writer, p *reconcile.Plan, s Style) {
	for _, sp := range p.Stacks {
		fmt.Fprintf(w, "%s %s (%s)\n", s.bold("stack"), s.bold(sp.Stack), sp.File)
		if pg := sp.Postgres; pg != nil {
			line := fmt.Sprintf("  postgres %s", pg.Server)
			if v := strings.Fields(pg.ServerVersion); len(v) > 0 { // "15.18 (Debian 15.18-1)": the number
				line += " (PostgreSQL " + v[0] + ")"
			}
			if pg.Target != "" {
				word, before, after := pg.Levels()
				line += fmt.Sprintf(": migration %s %s", word, before)
				if after != before {
					line += " → " + after
				}
				line += fmt.Sprintf(" (target %s)", pg.Target)
			}
			fmt.Fprintln(w, line)
			if pg.Session != "" {
				fmt.Fprintf(w, "  migrations run with %s\n", pg.Session)
			}
			if cs := pg.Checksums; cs != nil && cs.Verified+cs.Adopted+cs.Unrecorded+len(cs.Changed) > 0 {
				fmt.Fprintf(w, "  checksums of applied migrations: %d verified, %d recorded at adoption, %d changed, %d not recorded\n",
					cs.Verified, cs.Adopted, len(cs.Changed), cs.Unrecorded)
			}
			writeDriftText(w, pg.Drift, s)
		}
		for _, c := range sp.Changes {
			if c.Kind == reconcile.ResourceChecksums {
				fmt.Fprintf(w, "    %s %s %s: %s → %s\n", s.green("+"), c.Action, c.Name, c.Before, c.After)
			}
		}
		for _, c := range sp.Changes {
			switch {
			case c.Kind == reconcile.ResourceMigration && c.Action == reconcile.ActionBaseline:
				fmt.Fprintf(w, "    %s baseline: %s (%s)\n", s.action(c.Action), c.After, c.Before)
			case c.Kind == reconcile.ResourceMigration:
				session := ""
				if c.Session != "" {
					session = "  [" + c.Session + "]"
				}
				fmt.Fprintf(w, "    %s %-4s %s%s%s\n", s.action(c.Action), c.Action, c.Name, session, s.risk(c))
			}
		}
		writePGServer(w, &sp, s)
		if r := sp.Redis; r != nil {
			where := "no config file"
			if r.ConfigFile != "" {
				where = "config file " + r.ConfigFile
			}
			if r.Version != "" {
				fmt.Fprintf(w, "  redis %s (Redis %s, %s)\n", r.Server, r.Version, where)
			} else {
				fmt.Fprintf(w, "  redis %s\n", r.Server)
			}
		}
		width := 0
		for _, c := range sp.Changes {
			if c.Kind == reconcile.ResourceRedisConfig {
				width = max(width, len(c.Name))
			}
		}
		for _, c := range sp.Changes {
			if c.Kind == reconcile.ResourceRedisConfig {
				fmt.Fprintf(w, "    %s %-*s  %s → %s%s\n", s.action(c.Action), width, c.Name, quote(c.Before), quote(c.After), s.risk(c))
			}
		}
		writeKeyspaceJobs(w, &sp, s)
		writeBackups(w, &sp, s)
		pending := sp.Postgres != nil && len(sp.Postgres.PendingRestart) > 0
		if len(sp.Changes) == 0 && len(sp.Errors) == 0 && !pending {
			fmt.Fprintf(w, "    %s\n", s.green("in sync: no changes"))
		}
		for _, warn := range sp.Warnings {
			fmt.Fprintf(w, "  %s %s\n", s.yellow("warning:"), warn)
		}
		for _, e := range sp.Errors {
			fmt.Fprintf(w, "  %s %s\n", s.red("error:"), e)
		}
		fmt.Fprintln(w)
	}
	sum := Summarize(p)
	line := sum.Line()
	if sum.Changes > 0 {
		line = "Plan: " + line
	}
	if sum.Failed > 0 {
		line = s.red(line)
	}
	fmt.Fprintln(w, line)
}

// writeBackups prints each backup job's state and its planned changes.
func writeBackups(w io.Writer, sp *reconcile.StackPlan, s Style) {
	for _, b := range sp.Backups {
		line := fmt.Sprintf("  backup %s (%s → %s): ", b.Job, b.Source, b.Destination)
		if b.LastBackup.IsZero() {
			line += "no verified backup yet"
		} else {
			line += fmt.Sprintf("last %s (%s ago, %s)", b.LastBackup.Format(time.RFC3339),
				time.Since(b.LastBackup).Round(time.Minute), HumanBytes(b.LastSize))
		}
		if b.Due {
			line += ", " + s.yellow("due now")
		} else if !b.Next.IsZero() {
			line += ", next " + b.Next.Format(time.RFC3339)
		}
		if b.Uncounted > 0 {
			line += fmt.Sprintf(", %d kept but not counted (failed verification or damaged)", b.Uncounted)
		}
		if b.Suspended {
			line += " [suspended in dbops run]"
		}
		fmt.Fprintln(w, line)
	}
	for _, c := range sp.Changes {
		if c.Kind == reconcile.ResourceBackup || c.Kind == reconcile.ResourcePrune {
			fmt.Fprintf(w, "    %s %-6s %s: %s%s\n", s.action(c.Action), c.Action, c.Name, c.After, s.risk(c))
		}
	}
}

// HumanBytes formats a size in binary units.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// risk flags a risky change on its line.
func (s Style) risk(c reconcile.Change) string {
	if c.Risk == "" {
		return ""
	}
	note := "  " + s.red("RISKY: "+c.Risk)
	if c.Deferred != "" {
		note += s.yellow(" (deferred " + c.Deferred + ")")
	}
	return note
}

// quote shows empty values visibly.
func quote(v string) string {
	if v == "" || strings.TrimSpace(v) != v {
		return fmt.Sprintf("%q", v)
	}
	return v
}

// ResultText prints each change's outcome and a summary.
func ResultText(w io.Writer, r *reconcile.Result, s Style) {
	var done, failed, skipped int
	for _, sr := range r.Stacks {
		if len(sr.Changes) == 0 && len(sr.Errors) == 0 {
			continue
		}
		fmt.Fprintf(w, "%s %s\n", s.bold("stack"), s.bold(sr.Stack))
		for _, c := range sr.Changes {
			label := Label(c.Change)
			if c.Kind == reconcile.ResourceKeyspaceJob && c.Keys != nil {
				label += fmt.Sprintf(": %d key(s) deleted", *c.Keys)
			}
			if c.Retries > 0 {
				label += fmt.Sprintf(" (retried %d× after lock timeout)", c.Retries)
			}
			switch c.Status {
			case reconcile.StatusDone:
				done++
				fmt.Fprintf(w, "    %s %s\n", s.green("done   "), label)
			case reconcile.StatusFailed:
				failed++
				fmt.Fprintf(w, "    %s %s: %s\n", s.red("failed "), label, c.Error)
			case reconcile.StatusDeferred, reconcile.StatusRefused:
				skipped++
				fmt.Fprintf(w, "    %s %s: %s\n", s.yellow(fmt.Sprintf("%-8s", c.Status)), label, c.Error)
			default:
				skipped++
				if c.Error != "" {
					fmt.Fprintf(w, "    %s %s: %s\n", s.yellow("skipped"), label, c.Error)
				} else {
					fmt.Fprintf(w, "    %s %s\n", s.yellow("skipped"), label)
				}
			}
		}
		switch {
		case sr.PostgresLevel != "" && sr.PostgresVersion != nil && sr.PostgresLevel != strconv.FormatInt(*sr.PostgresVersion, 10):
			fmt.Fprintf(w, "  postgres now at migration level %s\n", sr.PostgresLevel)
		case sr.PostgresVersion != nil:
			fmt.Fprintf(w, "  postgres now at migration version %d\n", *sr.PostgresVersion)
		}
		for _, e := range sr.Errors {
			fmt.Fprintf(w, "  %s %s\n", s.red("error:"), e)
		}
	}
	fmt.Fprintf(w, "Apply: %d done, %d failed, %d not applied.\n", done, failed, skipped)
}

// writePGServer prints the Postgres settings and extension changes, and
// the settings pending a restart.
func writePGServer(w io.Writer, sp *reconcile.StackPlan, s Style) {
	width := 0
	for _, c := range sp.Changes {
		if c.Kind == reconcile.ResourceSetting || c.Kind == reconcile.ResourceExtension {
			width = max(width, len(c.Name))
		}
	}
	for _, c := range sp.Changes {
		switch c.Kind {
		case reconcile.ResourceSetting:
			fmt.Fprintf(w, "    %s setting   %-*s  %s → %s%s\n", s.action(c.Action), width, c.Name, quote(c.Before), quote(c.After), s.risk(c))
		case reconcile.ResourceExtension:
			fmt.Fprintf(w, "    %s extension %-*s  %s %s → %s%s\n", s.action(c.Action), width, c.Name, c.Action, c.Before, c.After, s.risk(c))
		}
	}
	if pg := sp.Postgres; pg != nil && len(pg.PendingRestart) > 0 {
		fmt.Fprintf(w, "    %s %s (applied; in force once the server restarts, which dbops never does)\n",
			s.yellow("pending restart:"), strings.Join(pg.PendingRestart, ", "))
	}
}

// Label names a change in apply's output: "up 00001_users.sql",
// "maxmemory = 128mb", "backup pg".
func Label(c reconcile.Change) string {
	switch c.Kind {
	case reconcile.ResourceRedisConfig:
		return fmt.Sprintf("%s = %s", c.Name, quote(c.After))
	case reconcile.ResourceSetting:
		return fmt.Sprintf("%s setting %s = %s", c.Action, c.Name, quote(c.After))
	case reconcile.ResourceExtension:
		return fmt.Sprintf("%s extension %s (%s)", c.Action, c.Name, c.After)
	case reconcile.ResourceKeyspaceJob:
		return "keyspace job " + c.Name
	}
	return string(c.Action) + " " + c.Name
}

// Bold, Green and Red colour text as the plan does (progress lines).
func (s Style) Bold(t string) string  { return s.bold(t) }
func (s Style) Green(t string) string { return s.green(t) }
func (s Style) Red(t string) string   { return s.red(t) }
