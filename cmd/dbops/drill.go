package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/amanat/dbops/reconcile/backup"
)

func newBackupDrillCommand(e *env) *cobra.Command {
	var format, identityFile string
	cmd := &cobra.Command{
		Use:   "drill STACK/JOB [PATH...]",
		Short: "Restore the newest verified backup into a scratch database now and measure the recovery time",
		Long: `drill restores the job's newest verified backup as its scheduled drill does:
Postgres into a scratch database on the job's server (row counts against the
manifest, then the drill's SQL checks), Redis into a throwaway redis-server
(key count); then it drops the copy and prints the recovery time (download +
restore + checks). Exit 1 when the drill fails.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format, "text", "json"); err != nil {
				return err
			}
			targets, err := e.backupTargets(args[0], e.paths(args[1:]), true, false)
			if err != nil {
				return err
			}
			t := targets[0]
			opts := e.options().Backup
			opts.IdentityFile = identityFile
			rep, err := backup.Drill(cmd.Context(), backup.NewJob(t.stack, t.job), opts)
			if format == "json" {
				if jerr := writeJSON(e.stdout, rep); jerr != nil {
					return jerr
				}
			} else if err == nil {
				fmt.Fprintf(e.stdout, "drill %s: %s restored in %s (recovery time)\n  %s\n", rep.Job, rep.Backup,
					time.Duration(rep.RecoveryTime*float64(time.Second)).Round(time.Millisecond), rep.Detail)
			}
			if err != nil {
				return exitError{code: 1, msg: err.Error()}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	cmd.Flags().StringVar(&identityFile, "identity-file", "", "age identity file that decrypts encrypted backups (default $DBOPS_AGE_IDENTITY_FILE, or $DBOPS_AGE_IDENTITY)")
	return cmd
}
