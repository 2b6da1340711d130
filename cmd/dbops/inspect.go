package main

import (
	"github.com/spf13/cobra"

	"github.com/amanat/dbops/reconcile/inspect"
)

func newInspectCommand(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect STACK [PATH...]",
		Short: "Show a stack's servers at a glance (read-only): tables, connections, slow statements, Redis memory and stats",
		Long: `Inspect runs the runbook's admin queries and Redis monitoring commands against the
stack's servers, read-only: per table live rows and total size, connections by state,
the 10 slowest statements by mean time (when pg_stat_statements is installed),
database size and the migration level; Redis memory, evictions, keyspace hit ratio,
rejected connections, SLOWLOG GET 10, keys per database and persistence state.

It works with read-only credentials; pg_read_all_stats lets it see the state and
statements of other roles' sessions (see README). Exit status 0, or 1 when a server
could not be observed. STACK is the metadata.name of a stack in the spec files at
PATH (default: the current directory).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format, "text", "json"); err != nil {
				return err
			}
			paths := e.paths(args[1:]) // PATH arguments or -f, as every command
			st, err := e.loadStack(args[0], paths)
			if err != nil {
				return err
			}
			r := inspect.Stack(cmd.Context(), st, inspect.Options{ConnectTimeout: e.connectTimeout})
			if format == "json" {
				if err := writeJSON(e.stdout, r); err != nil {
					return err
				}
			} else {
				inspect.Text(e.stdout, r)
			}
			if r.Failed() {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json (schemas/inspect.schema.json)")
	return cmd
}
