package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

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
	cmd := &cobra.Command{
		Use:   "run STACK/JOB [PATH...]",
		Short: "Take and verify a backup now, whatever the schedule",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			targets, err := e.backupTargets(args[0], e.paths(args[1:]), true, false)
			if err != nil {
				return err
			}
			t := targets[0]
			o := e.options()
			o.Backup.NoVerify = skipVerify
			m, err := backup.Run(cmd.Context(), backup.NewJob(t.stack, t.job), o.Backup)
			if err != nil {
				return exitError{code: 1, msg: err.Error()}
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
	return cmd
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
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
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
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	return cmd
}

func newRestoreCommand(e *env) *cobra.Command {
	var id, toURL, redisDir, redisStart, redisStop, identityFile string
	var clean bool
	cmd := &cobra.Command{
		Use:   "restore STACK/JOB [PATH...] --to-url URL [--backup ID] [--clean] [--redis-dir DIR --redis-start CMD [--redis-stop CMD]]",
		Short: "Restore a backup: Postgres with pg_restore, Redis by replacing dump.rdb",
		Long: `Restore restores the newest verified backup of a job (or --backup ID) into the
database at --to-url with pg_restore, in a single transaction. It refuses to
restore over a database that has tables unless --clean is given. Only verified
backups are restored.

For Redis it checks the RDB file (every record read) and, without --redis-dir,
prints the manual procedure. With --redis-dir (the server's data directory),
--redis-start (a shell command that starts the server and returns, e.g.
"systemctl start redis-server") and --to-url redis://..., it performs the
procedure itself: AOF off in the config file for the restart, stop
(--redis-stop, default SHUTDOWN NOSAVE), dump.rdb replaced (the old one and
the AOF folder moved aside), start, key count checked, AOF back on.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			targets, err := e.backupTargets(args[0], e.paths(args[1:]), true, true) // restores into --to-url, not the stack's URL
			if err != nil {
				return err
			}
			t := targets[0]
			job := backup.NewJob(t.stack, t.job)
			bs, err := backup.ListChecked(cmd.Context(), t.job.Destination, job)
			if err != nil {
				return exitError{code: 1, msg: err.Error()}
			}
			var chosen *backup.Backup
			for i := range bs {
				if (id == "" && bs[i].Counted && (chosen == nil || bs[i].Time().After(chosen.Time()))) || (id != "" && bs[i].ID == id) {
					chosen = &bs[i]
				}
			}
			if chosen == nil {
				return exitError{code: 1, msg: fmt.Sprintf("no verified backup of %s (--backup %q); see dbops backup list", args[0], id)}
			}
			e.guardSecrets(spec.Password(toURL))
			opts := e.options().Backup
			opts.IdentityFile = identityFile
			if t.job.Source == "redis" {
				if redisDir == "" {
					info, err := backup.CheckRedisBackup(cmd.Context(), *chosen, opts)
					if err != nil {
						return exitError{code: 1, msg: fmt.Sprintf("%s is not usable: %v", chosen.File, err)}
					}
					fmt.Fprintf(e.stdout, "%s is a usable RDB (%s; %s).\n%s\n", chosen.File, info.Summary(), render.HumanBytes(info.Size), backup.RedisRestoreProcedure)
					return nil
				}
				if toURL == "" || redisStart == "" {
					return exitError{code: 1, msg: "--redis-dir needs --to-url redis://... (the server to restore into) and --redis-start (the command that starts it)"}
				}
				to := backup.RedisRestoreTarget{URL: toURL, Dir: redisDir, Start: shellStep("--redis-start", redisStart)}
				if redisStop != "" {
					to.Stop = shellStep("--redis-stop", redisStop)
				}
				rep, err := backup.RestoreRedisBackup(cmd.Context(), *chosen, to, opts)
				if err != nil {
					return exitError{code: 1, msg: err.Error()}
				}
				fmt.Fprint(e.stdout, rep.String())
				return nil
			}
			if redisDir != "" {
				return exitError{code: 1, msg: "--redis-dir is for Redis backups; " + args[0] + " is a Postgres job"}
			}
			if toURL == "" {
				return exitError{code: 1, msg: "--to-url is required: the database to restore into"}
			}
			rep, err := backup.RestoreBackup(cmd.Context(), *chosen, toURL, clean, opts)
			if err != nil {
				return exitError{code: 1, msg: err.Error()}
			}
			fmt.Fprint(e.stdout, rep.String())
			return nil
		},
	}
	cmd.Flags().StringVar(&id, "backup", "", "backup ID (see dbops backup list); default: the newest verified one")
	cmd.Flags().StringVar(&toURL, "to-url", "", "postgres:// URL of the database, or redis:// URL of the server, to restore into (${VAR} is not expanded; use your shell)")
	cmd.Flags().BoolVar(&clean, "clean", false, "drop the backup's objects first, allowing a restore over a database that has tables")
	cmd.Flags().StringVar(&redisDir, "redis-dir", "", "Redis: the server's data directory (CONFIG GET dir); dbops then restores the RDB itself")
	cmd.Flags().StringVar(&redisStart, "redis-start", "", "Redis: shell command that starts the server and returns (with --redis-dir)")
	cmd.Flags().StringVar(&identityFile, "identity-file", "", "age identity file that decrypts encrypted backups (default $DBOPS_AGE_IDENTITY_FILE, or the identity in $DBOPS_AGE_IDENTITY)")
	cmd.Flags().StringVar(&redisStop, "redis-stop", "", "Redis: shell command that stops the server (default: SHUTDOWN NOSAVE)")
	return cmd
}

// shellStep runs a user's command with sh -c; its output goes to stderr.
func shellStep(flag, command string) func(context.Context) error {
	return func(ctx context.Context) error {
		c := exec.CommandContext(ctx, "sh", "-c", command)
		c.Stdout, c.Stderr = os.Stderr, os.Stderr
		if err := c.Run(); err != nil {
			return fmt.Errorf("%s %q: %w", flag, command, err)
		}
		return nil
	}
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
