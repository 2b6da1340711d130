package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/amanat/dbops/reconcile"
)

func newMigrationsCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrations",
		Short: "Maintain the migration bookkeeping of a stack",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "repair STACK [PATH...]",
		Short: "Re-record the checksums of a stack's applied migrations as the files are now",
		Long: `Repair accepts edits of already-applied migrations. dbops records the SHA-256 of
every goose migration it applies (in a ledger table beside goose's version table),
and plan refuses a stack whose applied migration files changed. When the edit is
deliberate and harmless (a comment, formatting), repair records the current
files' checksums for every applied migration whose file differs or has none,
marked "repair" with the time, and prints each one. goose's own table is not
touched.

STACK is the metadata.name of a stack in the spec files at PATH.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := e.loadStack(args[0], e.paths(args[1:]))
			if err != nil {
				return err
			}
			rows, err := reconcile.Repair(cmd.Context(), st, e.options())
			if err != nil {
				return exitError{code: 1, msg: fmt.Sprintf("stack %s: %v; nothing was re-recorded", st.Metadata.Name, err)}
			}
			for _, r := range rows {
				before := "none"
				if r.Before != "" {
					before = short(r.Before)
				}
				fmt.Fprintf(e.stdout, "re-recorded %s (version %d): sha256 %s → %s\n", r.File, r.Version, before, short(r.After))
			}
			fmt.Fprintf(e.stdout, "Repair of stack %s: %d checksum(s) re-recorded.\n", st.Metadata.Name, len(rows))
			return nil
		},
	})
	return cmd
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12] + "…"
	}
	return sum
}
