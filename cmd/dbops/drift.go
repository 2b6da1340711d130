package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/drift"
)

func newDriftCommand(e *env) *cobra.Command {
	var format string
	var showSQL, noCache bool
	cmd := &cobra.Command{
		Use:   "drift STACK [PATH...]",
		Short: "Compare a stack's live schema with what its applied migrations produce",
		Long: `Drift replays the migrations applied to the stack's database (up to its live
level) into a scratch database dbops_drift_<random>, created and always dropped on
the same server (or on spec.postgres.drift.scratch), reads both schemas with
read-only catalog queries, and prints every object that differs: tables, columns
(type, default, nullability, identity, generated), constraints, indexes, triggers,
views, functions and procedures, sequences, enum types, extensions, schemas and
row-level security policies. Version tables of goose and drizzle and dbops'
checksum ledger are ignored.

The expected schema is cached per migration set (the checksums of the applied
migrations, the server's major version and the scratch location) in
${XDG_CACHE_HOME:-~/.cache}/dbops/drift, so it is replayed again only when the
migrations change; --no-cache replays it regardless and leaves the cache alone.

With --sql, each item carries the SQL that would make the live database match,
for a human to review; dbops never runs it. Exit status 0: no drift; 2: drift found; 1: error.

STACK is the metadata.name of a stack in the spec files at PATH.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format, "text", "json"); err != nil {
				return err
			}
			st, err := e.loadStack(args[0], e.paths(args[1:]))
			if err != nil {
				return err
			}
			o := e.options()
			if noCache {
				o.DriftCache = nil
			}
			r, err := reconcile.Drift(cmd.Context(), st, o)
			if err != nil {
				return exitError{code: 1, msg: fmt.Sprintf("stack %s: %v", st.Metadata.Name, err)}
			}
			if !showSQL {
				for i := range r.Items {
					r.Items[i].SQL = ""
				}
			}
			if format == "json" {
				if r.Items == nil {
					r.Items = []drift.Item{}
				}
				if err := writeJSON(e.stdout, struct {
					Stack string `json:"stack"`
					drift.Report
				}{st.Metadata.Name, r}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(e.stdout, "Schema drift of stack %s at migration level %s (%d objects compared, expected schema %s, in %dms):\n",
					st.Metadata.Name, r.Level, r.Objects, expectedFrom(r), r.ElapsedMS)
				for _, it := range r.Items {
					fmt.Fprintf(e.stdout, "  - %s\n", it)
					if it.SQL != "" {
						fmt.Fprintf(e.stdout, "      to match the migrations (review; never run by dbops):\n")
						for _, line := range strings.Split(it.SQL, "\n") {
							fmt.Fprintf(e.stdout, "        %s\n", line)
						}
					}
				}
				if len(r.Items) == 0 {
					fmt.Fprintln(e.stdout, "  no drift")
				}
			}
			if len(r.Items) > 0 {
				return exitError{code: 2}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json (schemas/drift.schema.json)")
	cmd.Flags().BoolVar(&noCache, "no-cache", false, "replay the migrations into a scratch database even when the expected schema is cached, and do not cache it")
	cmd.Flags().BoolVar(&showSQL, "sql", false, "show, for each item, the SQL that would make the live database match (never run)")
	return cmd
}

// expectedFrom says where the report's expected schema came from.
func expectedFrom(r drift.Report) string {
	if r.Expected == drift.FromCache {
		return "from the cache"
	}
	return "built on " + r.Scratch
}
