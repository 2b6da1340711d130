package render

import (
	"fmt"
	"io"
	"strings"

	"github.com/amanat/dbops/reconcile"
)

// Summary counts a plan's changes by kind, for the one-line summaries.
type Summary struct {
	Stacks, Changes, Migrations, Settings, Backups, Risky, Deferred, Failed int
	Ledger                                                                  int // checksum ledger records
	Drifted                                                                 int // stacks whose schema drifted
	Keyspace                                                                int // keyspace jobs
	// Postgres server state (extensions and settings) and the stacks
	// whose settings wait for a restart.
	PGServer, PendingRestart int
}

// Summarize counts the plan's changes.
func Summarize(p *reconcile.Plan) Summary {
	s := Summary{Stacks: len(p.Stacks)}
	for _, sp := range p.Stacks {
		if len(sp.Errors) > 0 {
			s.Failed++
		}
		if sp.Postgres != nil && len(sp.Postgres.PendingRestart) > 0 {
			s.PendingRestart++
		}
		if pg := sp.Postgres; pg != nil && pg.Drift != nil && len(pg.Drift.Items) > 0 {
			s.Drifted++
		}
		for _, c := range sp.Changes {
			s.Changes++
			switch c.Kind {
			case reconcile.ResourceMigration:
				s.Migrations++
			case reconcile.ResourceRedisConfig:
				s.Settings++
			case reconcile.ResourceChecksums:
				s.Ledger++
			case reconcile.ResourceKeyspaceJob:
				s.Keyspace++
			case reconcile.ResourceSetting, reconcile.ResourceExtension:
				s.PGServer++
			default:
				s.Backups++
			}
			if c.Risk != "" {
				s.Risky++
			}
			if c.Deferred != "" {
				s.Deferred++
			}
		}
	}
	return s
}

// Line is the one-line summary shared by the text and markdown renderings.
func (s Summary) Line() string {
	drifted := ""
	if s.Drifted > 0 {
		drifted = fmt.Sprintf(" %d stack(s) with schema drift (reported, never applied).", s.Drifted)
	}
	if s.Changes == 0 {
		// What went wrong first: "No changes" over stacks that could not
		// be planned reads as all being well.
		inSync := s.Stacks - s.Failed - s.PendingRestart
		var line string
		switch {
		case s.PendingRestart > 0: // never "in sync" while a setting waits for a restart
			line = fmt.Sprintf("No changes: %d stack(s) pending a server restart", s.PendingRestart)
			if inSync > 0 {
				line += fmt.Sprintf(", %d in sync", inSync)
			}
			line += "."
			if s.Failed > 0 {
				line = fmt.Sprintf("%d stack(s) could not be planned (errors above). ", s.Failed) + line
			}
		case s.Failed == 0:
			line = fmt.Sprintf("No changes: %d stack(s) in sync.", inSync)
		case inSync == 0:
			line = fmt.Sprintf("%d stack(s) could not be planned (errors above); nothing else to do.", s.Failed)
		default:
			line = fmt.Sprintf("%d stack(s) could not be planned (errors above); the other %d are in sync.", s.Failed, inSync)
		}
		return line + drifted
	}
	line := fmt.Sprintf("%d change(s) in %d stack(s): %d migration(s), %d Redis setting(s), %d backup change(s).",
		s.Changes, s.Stacks, s.Migrations, s.Settings, s.Backups)
	if s.Ledger > 0 {
		line = strings.TrimSuffix(line, ".") + fmt.Sprintf(", %d checksum record(s).", s.Ledger)
	}
	if s.Keyspace > 0 {
		line = strings.TrimSuffix(line, ".") + fmt.Sprintf(", %d keyspace job(s).", s.Keyspace)
	}
	if s.PGServer > 0 {
		line = strings.TrimSuffix(line, ".") + fmt.Sprintf(", %d Postgres setting/extension change(s).", s.PGServer)
	}
	if s.PendingRestart > 0 {
		line += fmt.Sprintf(" %d stack(s) pending a server restart.", s.PendingRestart)
	}
	if s.Risky > 0 {
		line += fmt.Sprintf(" %d risky", s.Risky)
		if s.Deferred > 0 {
			line += fmt.Sprintf(", %d deferred to a maintenance window", s.Deferred)
		}
		line += "."
	}
	if s.Failed > 0 {
		line += fmt.Sprintf(" %d stack(s) could not be planned.", s.Failed)
	}
	return line + drifted
}

var mdIcons = map[reconcile.Action]string{reconcile.ActionUp: "➕", reconcile.ActionUpdate: "✏️", reconcile.ActionDown: "➖", reconcile.ActionBaseline: "📌", reconcile.ActionBackup: "💾", reconcile.ActionDelete: "🗑️", reconcile.ActionRecord: "🔏", reconcile.ActionCreate: "➕", reconcile.ActionDrop: "➖", reconcile.ActionReset: "↩️"}

// Markdown renders the plan for a pull request comment: a one-line
// summary, then per stack a table of changes with risks flagged.
func Markdown(w io.Writer, p *reconcile.Plan) {
	sum := Summarize(p)
	icon := "✅"
	switch {
	case sum.Failed > 0:
		icon = "❌"
	case sum.Risky > 0:
		icon = "⚠️"
	case sum.Changes > 0:
		icon = "📝"
	}
	fmt.Fprintf(w, "%s **dbops plan**: %s\n", icon, sum.Line())
	for _, sp := range p.Stacks {
		fmt.Fprintf(w, "\n### Stack `%s`\n\n", sp.Stack)
		fmt.Fprintf(w, "From `%s`.", sp.File)
		if pg := sp.Postgres; pg != nil && pg.Target != "" {
			word, before, after := pg.Levels()
			if after != before {
				fmt.Fprintf(w, " Postgres `%s`: migration %s **%s → %s** (target %s).", pg.Server, word, before, after, pg.Target)
			} else {
				fmt.Fprintf(w, " Postgres `%s`: migration %s %s (target %s).", pg.Server, word, before, pg.Target)
			}
			if pg.Session != "" {
				fmt.Fprintf(w, " Migrations run with %s.", cell(pg.Session))
			}
		}
		if r := sp.Redis; r != nil {
			fmt.Fprintf(w, " Redis `%s`", r.Server)
			if r.Version != "" {
				fmt.Fprintf(w, " (Redis %s)", r.Version)
			}
			fmt.Fprint(w, ".")
		}
		fmt.Fprintln(w)
		if sp.Postgres != nil {
			writeDriftMarkdown(w, sp.Stack, sp.Postgres.Drift)
		}
		pending := sp.Postgres != nil && len(sp.Postgres.PendingRestart) > 0
		if len(sp.Changes) == 0 && len(sp.Errors) == 0 && !pending {
			fmt.Fprintln(w, "\nIn sync: no changes.")
		}
		if len(sp.Changes) > 0 {
			fmt.Fprintln(w, "\n| | Resource | Change | Before | After | Risk |")
			fmt.Fprintln(w, "|---|---|---|---|---|---|")
			for _, c := range sp.Changes {
				risk := ""
				if c.Risk != "" {
					risk = "⚠️ " + cell(c.Risk)
					if c.Deferred != "" {
						risk += "<br>deferred " + cell(c.Deferred)
					}
				}
				name := "`" + cell(c.Name) + "`"
				if c.Session != "" {
					name += " (" + cell(c.Session) + ")"
				}
				fmt.Fprintf(w, "| %s | `%s` | %s %s | %s | %s | %s |\n", mdIcons[c.Action], c.Resource, c.Action, name,
					code(c.Before), code(c.After), risk)
			}
		}
		for _, warn := range sp.Warnings {
			fmt.Fprintf(w, "\n> ⚠️ %s\n", cell(warn))
		}
		for _, e := range sp.Errors {
			fmt.Fprintf(w, "\n> ❌ **error**: %s\n", cell(e.Error()))
		}
	}
}

// cell keeps text from breaking a table row.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", "<br>")
}

func code(s string) string {
	if s == "" {
		return `""`
	}
	return "`" + strings.ReplaceAll(s, "`", "'") + "`"
}
