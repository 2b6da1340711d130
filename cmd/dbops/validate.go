package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newValidateCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "validate [PATH...]",
		Short: "Check stack specs offline; contacts no server",
		Long: `Validate reads every Stack document in the given YAML files and folders and
reports every problem with its file, stack and field. It contacts no server and
needs no credentials: an unset ${VAR} is a warning here, an error for plan.

Exit status: 0 valid, 1 invalid.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := e.load(e.paths(args), true)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%d stack(s) in %d file(s) are valid.\n", len(res.Stacks), len(res.Files))
			return nil
		},
	}
}
