package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/spf13/cobra"

	"github.com/amanat/dbops/reconcile/backup"
	"github.com/amanat/dbops/reconcile/render"
	"github.com/amanat/dbops/spec"
)

func newRestoreCommand(e *env) *cobra.Command {
	var id, toURL, redisDir, redisStart, redisStop, identityFile, format string
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
			if err := checkFormat(format, "text", "json"); err != nil {
				return err
			}
			targets, err := e.backupTargets(args[0], e.paths(args[1:]), true, true) // restores into --to-url, not the stack's URL
			if err != nil {
				return err
			}
			t := targets[0]
			doc := restoreDoc{FormatVersion: "dbops.restore/v1", Stack: t.stack.Metadata.Name, Job: t.job.Name, Source: t.job.Source}
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
					if format == "json" {
						doc.Backup, doc.Check, doc.Procedure = chosen.File, &info, backup.RedisRestoreProcedure
						return writeJSON(e.stdout, doc)
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
				if format == "json" {
					doc.Backup, doc.Redis = rep.Backup, &rep
					return writeJSON(e.stdout, doc)
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
			if format == "json" {
				doc.Backup, doc.Postgres = rep.Backup, &rep
				return writeJSON(e.stdout, doc)
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
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json (schemas/restore.schema.json)")
	cmd.Flags().StringVar(&redisStop, "redis-stop", "", "Redis: shell command that stops the server (default: SHUTDOWN NOSAVE)")
	return cmd
}

// restoreDoc is restore's JSON output (schemas/restore.schema.json).
type restoreDoc struct {
	FormatVersion string              `json:"formatVersion"`
	Stack         string              `json:"stack"`
	Job           string              `json:"job"`
	Source        string              `json:"source"`
	Backup        string              `json:"backup"`
	Postgres      *backup.Report      `json:"postgres,omitempty"`
	Redis         *backup.RedisReport `json:"redis,omitempty"`
	Check         *backup.RDBInfo     `json:"check,omitempty"`
	Procedure     string              `json:"procedure,omitempty"`
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
