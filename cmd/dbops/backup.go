package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/backup"
	"github.com/amanat/dbops/reconcile/render"
	"github.com/amanat/dbops/spec"
)

// backupTarget finds STACK/JOB (or STACK, or everything) in the spec.
type backupTarget struct {
	stack *spec.Stack
	job   spec.Backup
}

// offline: the command reads only the backup folders, so unset ${VAR}s in
// the stack's URLs are warnings, as for validate.
func (e *env) backupTargets(sel string, paths []string, needJob, offline bool) ([]backupTarget, error) {
	res, err := e.load(paths, offline)
	if err != nil {
		return nil, err
	}
	e.guard(res.Stacks)
	stackName, jobName, _ := strings.Cut(sel, "/")
	if needJob && (stackName == "" || jobName == "") {
		return nil, exitError{code: 1, msg: fmt.Sprintf("%q: name the job as STACK/JOB", sel)}
	}
	var out []backupTarget
	for i := range res.Stacks {
		st := &res.Stacks[i]
		if stackName != "" && st.Metadata.Name != stackName {
			continue
		}
		for _, b := range st.Spec.Backups {
			if jobName == "" || b.Name == jobName {
				out = append(out, backupTarget{st, b})
			}
		}
	}
	if len(out) == 0 && sel != "" {
		return nil, exitError{code: 1, msg: fmt.Sprintf("no backup job %q in %s", sel, strings.Join(paths, ", "))}
	}
	return out, nil
}

func newBackupCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "backup", Short: "Take and list the backups the spec schedules"}
	cmd.AddCommand(newBackupRunCommand(e), newBackupListCommand(e), newBackupDrillCommand(e))
	return cmd
}

func newBackupRunCommand(e *env) *cobra.Command {
	var skipVerify bool
	var format string
	cmd := &cobra.Command{
		Use:   "run STACK/JOB [PATH...]",
		Short: "Take and verify a backup now, whatever the schedule",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format, "text", "json"); err != nil {
				return err
			}
			targets, err := e.backupTargets(args[0], e.paths(args[1:]), true, false)
			if err != nil {
				return err
			}
			t := targets[0]
			o := e.options()
			o.Backup.NoVerify = skipVerify
			done := e.backupProgress(t, &o.Backup)
			m, err := backup.Run(cmd.Context(), backup.NewJob(t.stack, t.job), o.Backup)
			done(err)
			if err != nil {
				return exitError{code: 1, msg: err.Error()}
			}
			if format == "json" {
				return writeJSON(e.stdout, struct {
					FormatVersion string          `json:"formatVersion"`
					Stack         string          `json:"stack"`
					Job           string          `json:"job"`
					Manifest      backup.Manifest `json:"manifest"`
				}{"dbops.backup-run/v1", t.stack.Metadata.Name, t.job.Name, m})
			}
			fmt.Fprintf(e.stdout, "backup %s/%s: %s, %s in %s, sha256 %s, verification: %s\n", t.stack.Metadata.Name, t.job.Name,
				m.File, render.HumanBytes(m.Size), m.Duration().Round(time.Millisecond), m.SHA256[:16], m.Verification.Method)
			if m.Verification.Detail != "" {
				fmt.Fprintf(e.stdout, "  %s\n", m.Verification.Detail) // what was read: the key count, the checksum
			}
			return nil
		},
	}
	// For benchmarks: such a backup is kept but never counted.
	cmd.Flags().BoolVar(&skipVerify, "skip-verify", false, "take the backup without verifying it (it will not count as a backup)")
	cmd.Flags().MarkHidden("skip-verify")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json (schemas/backup-run.schema.json)")
	return cmd
}

// backupProgress shows, on a terminal (stderr), the backup's live line of
// bytes written and rate as apply does; the func returned ends it.
func (e *env) backupProgress(t backupTarget, o *backup.Options) func(error) {
	if !isTerminal(e.stderr) {
		return func(error) {}
	}
	ch := reconcile.Change{Stack: t.stack.Metadata.Name, Kind: reconcile.ResourceBackup,
		Resource: reconcile.ResourceBackup.Address(t.job.Name), Name: t.job.Name, Action: reconcile.ActionBackup}
	p := newProgress(e.stderr, e.styleFor(e.stderr), true, DefaultProgressInterval)
	p.Started(ch)
	o.Written = func(n int64) { p.Written(ch, n) }
	return func(err error) {
		r := reconcile.ChangeResult{Change: ch, Status: reconcile.StatusDone}
		if err != nil {
			r.Status, r.Error = reconcile.StatusFailed, "see below"
		}
		p.Finished(r)
		p.close()
	}
}

func newBackupListCommand(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "list [STACK[/JOB]] [PATH...]",
		Short: "List backups with their verification state",
		Long: `List lists every backup of the jobs selected (all, a stack's, or one job), with
its verification state. A first argument that names an existing file or
folder is a PATH, not a selector.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format, "text", "json"); err != nil {
				return err
			}
			sel := ""
			if len(args) > 0 {
				if _, err := os.Stat(args[0]); err != nil {
					sel, args = args[0], args[1:]
				}
			}
			targets, err := e.backupTargets(sel, e.paths(args), false, true)
			if err != nil {
				return err
			}
			type row struct {
				Stack   string          `json:"stack"`
				Job     string          `json:"job"`
				Backups []backup.Backup `json:"backups"`
				// Incomplete are temporary files of unfinished runs.
				Incomplete []backup.Backup `json:"incomplete,omitempty"`
			}
			var rows []row
			for _, t := range targets {
				bs, err := backup.ListChecked(cmd.Context(), t.job.Destination, backup.NewJob(t.stack, t.job))
				if err != nil {
					return exitError{code: 1, msg: err.Error()}
				}
				job := backup.NewJob(t.stack, t.job)
				rows = append(rows, row{t.stack.Metadata.Name, t.job.Name, bs, backup.Incomplete(t.job.Destination, job)})
			}
			if format == "json" {
				if rows == nil {
					rows = []row{}
				}
				return writeJSON(e.stdout, rows)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STACK/JOB\tID\tTIME\tSIZE\tCOUNTED\tVERIFIED\tNOTE")
			for _, r := range rows {
				for _, b := range r.Backups {
					counted := "yes"
					if !b.Counted {
						counted = "no"
					}
					fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Stack, r.Job, b.ID, b.Time().Format(time.RFC3339),
						render.HumanBytes(b.Manifest.Size), counted, verified(b), b.Reason)
				}
				for _, b := range r.Incomplete {
					fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\tno\t-\t%s\n", r.Stack, r.Job, b.ID, b.Time().Format(time.RFC3339),
						render.HumanBytes(b.Manifest.Size), b.Reason)
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json (schemas/backup-list.schema.json)")
	return cmd
}

// verified is the VERIFIED column: the method when verification passed
// and still holds; "NO (method)" when it failed or did not read every
// record; "VOID (was method)" when the file changed since (checksum or
// size mismatch, file missing).
func verified(b backup.Backup) string {
	v := b.Manifest.Verification
	switch {
	case v.Method == "":
		return "-"
	case !v.OK || v.Method == backup.VerifyNone || strings.HasPrefix(b.Reason, "NOT verified"):
		return "NO (" + v.Method + ")"
	case !b.Counted:
		return "VOID (was " + v.Method + ")"
	}
	return v.Method
}
