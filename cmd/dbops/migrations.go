package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/spec"
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
			res, err := e.load(e.paths(args[1:]), false)
			if err != nil {
				return err
			}
			e.guard(res.Stacks)
			i := slices.IndexFunc(res.Stacks, func(st spec.Stack) bool { return st.Metadata.Name == args[0] })
			if i < 0 {
				names := make([]string, len(res.Stacks))
				for j, st := range res.Stacks {
					names[j] = st.Metadata.Name
				}
				return exitError{code: 1, msg: fmt.Sprintf("no stack %q in %s (stacks: %s)", args[0], strings.Join(e.paths(args[1:]), ", "), strings.Join(names, ", "))}
			}
			st := &res.Stacks[i]
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
