package main

import (
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/amanat/dbops/spec"
)

// Shell completion is cobra's (dbops completion bash|zsh|fish|powershell);
// this adds what only dbops knows: stack names, STACK/JOB, --format values.

// completions registers the dynamic completions on the command tree.
func completions(root *cobra.Command, e *env) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.LocalFlags().Lookup("format") != nil {
			values := []string{"text", "json"}
			if c.Name() == "plan" {
				values = append(values, "markdown")
			}
			c.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
		}
		switch c.CommandPath() {
		case "dbops drift", "dbops migrations repair", "dbops inspect":
			c.ValidArgsFunction = e.completeFirst(false)
		case "dbops backup run", "dbops backup drill", "dbops restore", "dbops backup list":
			c.ValidArgsFunction = e.completeFirst(true)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// completeFirst completes the first argument with the stack names (or
// STACK/JOB of the backup jobs) of the spec given with -f or in the current
// folder, and later ones (PATH) as files.
func (e *env) completeFirst(jobs bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveDefault
		}
		res, _ := spec.Load(e.paths(nil), spec.Options{Root: e.root, KeepUnsetVars: true})
		if res == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, st := range res.Stacks {
			if !jobs {
				out = append(out, st.Metadata.Name)
				continue
			}
			for _, b := range st.Spec.Backups {
				if name := st.Metadata.Name + "/" + b.Name; strings.HasPrefix(name, toComplete) {
					out = append(out, name)
				}
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// newManCommand writes the man pages (make man); hidden, for packaging.
func newManCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "Write the man pages of every command into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return err
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true // reproducible pages
			return doc.GenManTree(root, &doc.GenManHeader{Title: "DBOPS", Section: "1", Source: "dbops " + currentBuild().Version}, args[0])
		},
	}
}
