package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/pool"
	"github.com/amanat/dbops/reconcile/render"
)

type planCommand struct {
	*env
	format           string
	detailedExitCode bool
	out              string
	concurrency      int
	noDrift          bool
}

func newPlanCommand(e *env) *cobra.Command {
	c := &planCommand{env: e}
	cmd := &cobra.Command{
		Use:   "plan [PATH...]",
		Short: "Show how the live servers differ from the spec; writes nothing",
		Long: `Plan observes each stack's PostgreSQL and Redis with read-only queries and
prints every change apply would make: each Redis parameter that differs
(live → desired), each pending migration, and the migration version now and after.
The Postgres session is opened with default_transaction_read_only=on.

Exit status: 0 on success, 1 on error. With --detailed-exitcode: 0 no changes,
1 error, 2 changes pending.

Schema drift: for a stack with spec.postgres.drift, plan also compares the live
schema with what its applied migrations produce (see dbops drift). The expected
schema comes from the cache (${XDG_CACHE_HOME:-~/.cache}/dbops/drift) when the
migration set is unchanged, else it is replayed into a scratch database (never the
live one). Without a cache entry and without CREATEDB, plan says "expected schema
unavailable" and goes on. Drift items are reported, never applied, and do not
change the exit status. --no-drift skips the check.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return c.run(cmd, args) },
	}
	cmd.Flags().StringVar(&c.format, "format", "text", "output format: text, json (schemas/plan.schema.json) or markdown (for a pull request comment)")
	cmd.Flags().StringVar(&c.out, "out", "", "also save the plan to `FILE`, with a fingerprint of what it observed, for dbops apply FILE")
	cmd.Flags().IntVar(&c.concurrency, "concurrency", 8, "stacks observed at once")
	cmd.Flags().BoolVar(&c.noDrift, "no-drift", false, "skip the schema drift check of stacks with spec.postgres.drift")
	cmd.Flags().BoolVar(&c.detailedExitCode, "detailed-exitcode", false, "exit 2 when changes are pending, 0 when none")
	return cmd
}

func (c *planCommand) run(cmd *cobra.Command, args []string) error {
	if err := checkFormat(c.format, "text", "json", "markdown"); err != nil {
		return err
	}
	useParseCache()
	style := c.style()
	res, err := c.load(c.paths(args), false)
	if err != nil {
		return err
	}
	c.guard(res.Stacks)
	if c.concurrency < 1 {
		return exitError{code: 1, msg: fmt.Sprintf("--concurrency %d: give at least 1", c.concurrency)}
	}
	o := c.options()
	o.Concurrency = c.concurrency
	o.SkipDrift = c.noDrift
	// Stacks sharing a Redis URL share its connections for the run.
	o.Pool = pool.New(pool.Options{})
	defer o.Pool.Close()
	plan := reconcile.PlanStacks(cmd.Context(), res.Stacks, o)
	switch c.format {
	case "json":
		if err := writeJSON(c.stdout, plan); err != nil {
			return err
		}
	case "markdown":
		render.Markdown(c.stdout, plan)
	default:
		render.PlanText(c.stdout, plan, style)
	}
	if c.out != "" {
		if err := c.save(plan, c.paths(args), res.Files); err != nil {
			return exitError{code: 1, msg: err.Error()}
		}
	}
	switch {
	case plan.HasErrors():
		return exitError{code: 1}
	case c.detailedExitCode && plan.HasChanges():
		return exitError{code: 2}
	}
	return nil
}

// save writes the plan and its fingerprint for `dbops apply FILE`.
func (c *planCommand) save(plan *reconcile.Plan, paths, files []string) error {
	fp, err := reconcile.Fingerprint(paths, files)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	b, err := json.MarshalIndent(reconcile.Saved{FormatVersion: reconcile.SavedFormat, Plan: plan, Spec: fp}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(c.out, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	fmt.Fprintf(c.stderr, "Saved the plan to %s; apply exactly it with: dbops apply %s\n", c.out, c.out)
	return nil
}
