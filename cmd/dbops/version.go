package main

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/amanat/dbops/reconcile/risk"
)

// version and commit are set at build time:
// -ldflags "-X main.version=... -X main.commit=..." (Makefile, Dockerfile).
var (
	version = ""
	commit  = ""
)

// buildInfo is what `dbops version --format json` prints
// (schemas/version.schema.json).
type buildInfo struct {
	Version   string   `json:"version"`
	Commit    string   `json:"commit"`
	GoVersion string   `json:"goVersion"`
	Platform  string   `json:"platform"`
	Features  features `json:"features"`
}

// features are the parts a build may leave out.
type features struct {
	// SQLParser: reconcile/risk analyses migration SQL with PostgreSQL's
	// own parser (pg_query_go, cgo builds only); without it every SQL
	// migration counts as risky ("cannot analyse").
	SQLParser bool `json:"sqlParser"`
}

func currentBuild() buildInfo {
	b := buildInfo{Version: version, Commit: commit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" {
			b.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && b.Commit == "" {
				b.Commit = s.Value
			}
		}
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	_, err := risk.TablesIndexed("SELECT 1")
	b.Features.SQLParser = !errors.Is(err, risk.ErrNoParser)
	return b
}

// String is the one-line form of `dbops version` and `dbops --version`.
func (b buildInfo) String() string {
	parser := "with"
	if !b.Features.SQLParser {
		parser = "without"
	}
	return fmt.Sprintf("dbops %s (commit %s, %s, %s, %s the SQL parser)", b.Version, b.Commit, b.GoVersion, b.Platform, parser)
}

func newVersionCommand(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the dbops version, commit, Go version and built-in features",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format, "text", "json"); err != nil {
				return err
			}
			b := currentBuild()
			if format == "json" {
				return writeJSON(e.stdout, b)
			}
			fmt.Fprintln(e.stdout, b)
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json (schemas/version.schema.json)")
	return cmd
}
