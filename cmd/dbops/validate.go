package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/amanat/dbops/spec"
)

// validateDoc is validate's JSON output (schemas/validate.schema.json).
type validateDoc struct {
	FormatVersion string        `json:"formatVersion"`
	Valid         bool          `json:"valid"`
	Files         []string      `json:"files"`
	Stacks        []string      `json:"stacks"`
	Notifications []string      `json:"notifications"`
	Errors        []problemJSON `json:"errors"`
	Warnings      []problemJSON `json:"warnings"`
}

// problemJSON is one spec.FieldError.
type problemJSON struct {
	File         string `json:"file,omitempty"`
	Stack        string `json:"stack,omitempty"`
	Notification string `json:"notification,omitempty"`
	Field        string `json:"field,omitempty"`
	Message      string `json:"message"`
	Text         string `json:"text"` // as the text output prints it
}

func problems(list []spec.FieldError) []problemJSON {
	out := []problemJSON{}
	for _, fe := range list {
		out = append(out, problemJSON{fe.File, fe.Stack, fe.Notification, fe.Field, fe.Msg, fe.Error()})
	}
	return out
}

func newValidateCommand(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "validate [PATH...]",
		Short: "Check stack specs offline; contacts no server",
		Long: `Validate reads every Stack document in the given YAML files and folders and
reports every problem with its file, stack and field. It contacts no server and
needs no credentials: an unset ${VAR} is a warning here, an error for plan.

Exit status: 0 valid, 1 invalid.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format, "text", "json"); err != nil {
				return err
			}
			if format == "json" {
				return e.validateJSON(e.paths(args))
			}
			res, err := e.load(e.paths(args), true)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%d stack(s) in %d file(s) are valid.\n", len(res.Stacks), len(res.Files))
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json (schemas/validate.schema.json)")
	return cmd
}

// validateJSON prints every error and warning as JSON; exit 1 when invalid.
func (e *env) validateJSON(paths []string) error {
	res, err := spec.Load(paths, spec.Options{Root: e.root, KeepUnsetVars: true})
	doc := validateDoc{FormatVersion: "dbops.validate/v1", Valid: err == nil, Files: []string{}, Stacks: []string{},
		Notifications: []string{}, Errors: []problemJSON{}, Warnings: []problemJSON{}}
	var list spec.ErrorList
	switch {
	case errors.As(err, &list):
		doc.Errors = problems(list)
	case err != nil: // no file to read: not a field's problem
		doc.Errors = []problemJSON{{Message: err.Error(), Text: err.Error()}}
	}
	if res != nil {
		doc.Files = append(doc.Files, res.Files...)
		for _, st := range res.Stacks {
			doc.Stacks = append(doc.Stacks, st.Metadata.Name)
		}
		for _, n := range res.Notifications {
			doc.Notifications = append(doc.Notifications, n.Metadata.Name)
		}
		doc.Warnings = problems(res.Warnings)
	}
	if err := writeJSON(e.stdout, doc); err != nil {
		return err
	}
	if !doc.Valid {
		return exitError{code: 1}
	}
	return nil
}
