package main

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/amanat/dbops/reconcile"
)

type applyCommand struct {
	*env
	autoApprove bool
}

func newApplyCommand(e *env) *cobra.Command {
	c := &applyCommand{env: e}
	cmd := &cobra.Command{
		Use:   "apply PATH...",
		Short: "Make the live servers match the spec",
		Long: `Apply plans as plan does, shows the plan and, once approved, applies it: the
Redis parameters of a stack in one CONFIG SET (then CONFIG REWRITE where the
server has a config file), migrations through goose under its session lock,
each in its own transaction unless the file says NO TRANSACTION.

On a terminal it asks before applying; without a terminal it refuses unless
--auto-approve is given. Exit status: 0 when everything applied, 1 otherwise.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return c.run(cmd, args) },
	}
	cmd.Flags().BoolVar(&c.autoApprove, "auto-approve", false, "apply without asking")
	return cmd
}

func (c *applyCommand) run(cmd *cobra.Command, args []string) error {
	style := c.style()
	interactive := isTerminal(c.stdin) && isTerminal(c.stdout)
	res, err := c.load(args, false)
	if err != nil {
		return err
	}
	c.guard(res.Stacks)
	plan := reconcile.PlanStacks(cmd.Context(), res.Stacks, c.options())
	plan.WriteText(c.stdout, style)
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
	result := reconcile.Apply(cmd.Context(), res.Stacks, plan, c.options())
	result.WriteText(c.stdout, style)
	if result.Failed() || plan.HasErrors() {
		return exitError{code: 1}
	}
	return nil
}
