package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/render"
)

type applyCommand struct {
	*env
	autoApprove bool
	allowRisky  bool
}

func newApplyCommand(e *env) *cobra.Command {
	c := &applyCommand{env: e}
	cmd := &cobra.Command{
		Use:   "apply PATH... | apply PLAN.json",
		Short: "Make the live servers match the spec",
		Long: `Apply plans as plan does, shows the plan and, once approved, applies it: the
Redis parameters of a stack in one CONFIG SET (then CONFIG REWRITE where the
server has a config file), goose migrations through goose under its session
lock, each in its own transaction unless the file says NO TRANSACTION; drizzle
migrations all in one transaction, recorded as drizzle's migrator records them.
Migrations run with lock_timeout 5s unless the stack or file says otherwise; a
migration that times out waiting for a lock is retried up to 3 times (never a
NO TRANSACTION one; for drizzle, the whole transaction). The SHA-256 of each
goose migration applied is recorded beside goose's table (drizzle records its
own hash). Redis keyspace jobs run after the migrations: SCAN + UNLINK of the
matching keys, then the job is recorded once in the hash dbops:keyspace-jobs.

On a terminal it asks before applying; without a terminal it refuses unless
--auto-approve is given. Exit status: 0 when everything applied, 3 when the
rest applied but risky changes wait for a maintenance window, 1 otherwise.

Given a plan saved with ` + "`dbops plan --out PLAN.json`" + `, apply applies exactly that
plan, without asking: it first observes again and refuses, naming what moved,
when the live state or the spec files no longer match the saved fingerprint.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return c.run(cmd, args) },
	}
	cmd.Flags().BoolVar(&c.autoApprove, "auto-approve", false, "apply without asking")
	cmd.Flags().BoolVar(&c.allowRisky, "allow-risky", false, "apply risky changes (down migrations, destructive SQL, risky Redis settings) outside maintenance windows")
	return cmd
}

func (c *applyCommand) run(cmd *cobra.Command, args []string) error {
	if saved, ok, err := readSaved(args); ok || err != nil {
		if err != nil {
			return exitError{code: 1, msg: err.Error()}
		}
		return c.applySaved(cmd, args[0], saved)
	}
	style := c.style()
	interactive := isTerminal(c.stdin) && isTerminal(c.stdout)
	res, err := c.load(args, false)
	if err != nil {
		return err
	}
	c.guard(res.Stacks)
	plan := reconcile.PlanStacks(cmd.Context(), res.Stacks, c.applyOptions())
	render.PlanText(c.stdout, plan, style)
	if !plan.HasChanges() {
		if plan.HasErrors() {
			return exitError{code: 1}
		}
		return nil
	}
	if !c.autoApprove {
		if !interactive {
			return exitError{code: 1, msg: "refusing to apply without --auto-approve: no terminal to ask for confirmation; nothing was changed"}
		}
		fmt.Fprint(c.stdout, "\nApply these changes? Only 'yes' is accepted: ")
		answer, _ := bufio.NewReader(c.stdin).ReadString('\n')
		if strings.TrimSpace(answer) != "yes" {
			return exitError{code: 1, msg: "apply cancelled; nothing was changed"}
		}
	}
	fmt.Fprintln(c.stdout)
	result := reconcile.Apply(cmd.Context(), res.Stacks, plan, c.applyOptions())
	render.ResultText(c.stdout, result, style)
	return applyExit(result, plan.HasErrors())
}

// applyExit is apply's exit status: 1 when anything failed, 3 when nothing
// failed but risky changes were deferred to a maintenance window (so a
// script cannot take "deferred" for "done"), 0 when everything applied.
func applyExit(result *reconcile.Result, planErrors bool) error {
	if result.Failed() || planErrors {
		return exitError{code: 1}
	}
	deferred := 0
	for _, s := range result.Stacks {
		for _, c := range s.Changes {
			if c.Status == reconcile.StatusDeferred {
				deferred++
			}
		}
	}
	if deferred > 0 {
		return exitError{code: exitDeferred, msg: fmt.Sprintf("%d risky change(s) deferred to the next maintenance window (listed above); the rest applied", deferred)}
	}
	return nil
}

// exitDeferred: apply made every change it could; risky ones wait for a window.
const exitDeferred = 3

// readSaved reads a saved plan when the only argument is one.
func readSaved(args []string) (*reconcile.Saved, bool, error) {
	if len(args) != 1 || !strings.HasSuffix(args[0], ".json") {
		return nil, false, nil
	}
	b, err := os.ReadFile(args[0])
	if err != nil {
		return nil, true, err
	}
	var s reconcile.Saved
	if err := json.Unmarshal(b, &s); err != nil || s.FormatVersion != reconcile.SavedFormat || s.Plan == nil {
		return nil, true, fmt.Errorf("%s is not a plan saved by dbops plan --out (formatVersion %s)", args[0], reconcile.SavedFormat)
	}
	return &s, true, nil
}

func (c *applyCommand) applySaved(cmd *cobra.Command, file string, saved *reconcile.Saved) error {
	res, err := c.load(saved.Spec.Paths, false)
	if err != nil {
		return err
	}
	c.guard(res.Stacks)
	now, err := reconcile.Fingerprint(saved.Spec.Paths, res.Files)
	if err != nil {
		return exitError{code: 1, msg: err.Error()}
	}
	fresh := reconcile.PlanStacks(cmd.Context(), res.Stacks, c.options())
	if moved := saved.Moved(fresh, now); len(moved) > 0 {
		for _, m := range moved {
			fmt.Fprintln(c.stderr, "  "+m)
		}
		return exitError{code: 1, msg: fmt.Sprintf("refusing to apply %s: %d thing(s) moved since it was planned (listed above); nothing was changed. Plan again.", file, len(moved))}
	}
	render.PlanText(c.stdout, saved.Plan, c.style())
	fmt.Fprintln(c.stdout)
	result := reconcile.Apply(cmd.Context(), res.Stacks, saved.Plan, c.applyOptions())
	render.ResultText(c.stdout, result, c.style())
	return applyExit(result, false)
}

func (c *applyCommand) applyOptions() reconcile.Options {
	o := c.options()
	o.AllowRisky = c.allowRisky
	return o
}
