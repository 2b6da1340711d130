package main

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Every help text reads right: pflag takes a `quoted` word of a flag's
// usage as its value name, so a quoted phrase shows as "--out dbops apply
// FILE"; each command has a one-line summary.
func TestHelpTexts(t *testing.T) {
	root := newRootCommand(&env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		t.Run(c.CommandPath(), func(t *testing.T) {
			if c.Short == "" || strings.HasSuffix(c.Short, ".") {
				t.Errorf("short help %q: want one line without a final period", c.Short)
			}
			if strings.Fields(c.Use)[0] != c.Name() {
				t.Errorf("usage %q does not start with the command's name", c.Use)
			}
			c.LocalFlags().VisitAll(func(f *pflag.Flag) {
				if f.Usage == "" {
					t.Errorf("--%s has no help", f.Name)
				}
				if name, _ := pflag.UnquoteUsage(f); strings.ContainsAny(name, " ") {
					t.Errorf("--%s shows its value as %q (backticks in its usage)", f.Name, name)
				}
			})
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
