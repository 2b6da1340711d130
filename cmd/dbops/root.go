package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/backup"
	"github.com/amanat/dbops/reconcile/drift"
	"github.com/amanat/dbops/reconcile/render"
	"github.com/amanat/dbops/reconcile/source"
	"github.com/amanat/dbops/spec"
)

// env is what every command reads and writes.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	root           string
	connectTimeout time.Duration
	pgDump         string
	pgRestore      string
	specPaths      []string
	noBackups      bool
}

func newRootCommand(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "dbops",
		Short: "Keep a PostgreSQL + Redis stack in the state its git repository declares",
		Long: `dbops reads Stack documents (YAML) that declare a PostgreSQL migration level and
Redis settings, shows how the live servers differ (plan) and makes them match (apply).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.PersistentFlags().StringVar(&e.root, "root", "", "repository root bounding migration dirs, for spec files outside a git work tree (default: the folder of each PATH)")
	root.PersistentFlags().StringSliceVarP(&e.specPaths, "file", "f", nil, "stack files or folders, as PATH arguments are (repeatable; default: the current folder)")
	root.PersistentFlags().DurationVar(&e.connectTimeout, "connect-timeout", spec.DefaultConnectTimeout, "timeout for connecting to each server")
	root.PersistentFlags().StringVar(&e.pgDump, "pg-dump", "", "pg_dump binary for backups (default: pg_dump on PATH)")
	root.PersistentFlags().BoolVar(&e.noBackups, "skip-backups", false, "leave backup jobs out of plan and apply (e.g. a CI runner without the backup volume)")
	root.PersistentFlags().StringVar(&e.pgRestore, "pg-restore", "", "pg_restore binary for verification and restore (default: pg_restore on PATH)")
	root.AddCommand(newBackupCommand(e), newRestoreCommand(e))
	root.AddCommand(newValidateCommand(e), newPlanCommand(e), newApplyCommand(e), newRunCommand(e), newHealthcheckCommand(e), newVersionCommand(e))
	root.AddCommand(newMigrationsCommand(e))
	root.AddCommand(newDriftCommand(e))
	root.AddCommand(newInspectCommand(e))
	root.AddCommand(newManCommand())
	root.SetHelpCommand(helpCommand())
	// --version by hand: cobra's goes through text/template, whose
	// reflection keeps every exported method in the binary (+17 MB).
	showVersion := root.Flags().BoolP("version", "v", false, "print the version, commit and Go version on one line (dbops version --format json for scripts)")
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if *showVersion {
			fmt.Fprintln(e.stdout, currentBuild())
			return nil
		}
		return cmd.Help()
	}
	root.InitDefaultCompletionCmd() // now, so that strictGroups covers it too
	completions(root, e)
	strictGroups(root)
	return root
}

// paths are the stack files and folders given, as PATH arguments or with
// -f, the same on every command; the current folder when none.
func (e *env) paths(args []string) []string {
	out := append(slices.Clone(args), e.specPaths...)
	if len(out) == 0 {
		return []string{"."}
	}
	return out
}

// load reads and validates the spec. Offline validation keeps unset ${VAR}s
// as warnings; plan and apply need them.
func (e *env) load(paths []string, offline bool) (*spec.Result, error) {
	first := "."
	if len(paths) > 0 {
		first = paths[0]
	}
	res, err := spec.Load(paths, spec.Options{Root: e.root, KeepUnsetVars: offline, RepoURL: source.OriginURL(first)})
	if res != nil {
		for _, w := range res.Warnings {
			fmt.Fprintln(e.stderr, "warning:", w.Error())
		}
	}
	var list spec.ErrorList
	if errors.As(err, &list) {
		for _, fe := range list {
			fmt.Fprintln(e.stderr, fe.Error())
		}
		return nil, exitError{code: 1, msg: fmt.Sprintf("%d error(s) in the spec; no server was contacted", len(list))}
	}
	if err != nil {
		return nil, exitError{code: 1, msg: err.Error()}
	}
	return res, nil
}

func (e *env) options() reconcile.Options {
	o := reconcile.Options{ConnectTimeout: e.connectTimeout, SkipBackups: e.noBackups,
		Backup: backup.Options{PgDumpPath: e.pgDump, PgRestorePath: e.pgRestore, ConnectTimeout: e.connectTimeout}}
	// Expected schemas of drift checks are cached per migration set; without
	// a cache folder each check replays the migrations again.
	if dir, err := drift.DefaultDir(); err == nil {
		o.DriftCache = drift.DirCache{Dir: dir}
	}
	return o
}

// style colours output only for a terminal, and never under NO_COLOR.
func (e *env) style() render.Style { return e.styleFor(e.stdout) }

func (e *env) styleFor(w io.Writer) render.Style {
	return render.Style{Color: isTerminal(w) && os.Getenv("NO_COLOR") == ""}
}

func isTerminal(v any) bool {
	f, ok := v.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// loadStack loads the spec files at paths and returns the stack named
// name, or an error listing the stacks there.
func (e *env) loadStack(name string, paths []string) (*spec.Stack, error) {
	res, err := e.load(paths, false)
	if err != nil {
		return nil, err
	}
	e.guard(res.Stacks)
	i := slices.IndexFunc(res.Stacks, func(st spec.Stack) bool { return st.Metadata.Name == name })
	if i < 0 {
		names := make([]string, len(res.Stacks))
		for j, st := range res.Stacks {
			names[j] = st.Metadata.Name
		}
		return nil, exitError{code: 1, msg: fmt.Sprintf("no stack %q in %s (stacks: %s)", name, strings.Join(paths, ", "), strings.Join(names, ", "))}
	}
	return &res.Stacks[i], nil
}

// guard registers the stacks' credentials for masking. Load has already
// registered them; this keeps commands that build URLs elsewhere covered.
func (e *env) guard(stacks []spec.Stack) {
	for _, st := range stacks {
		if pg := st.Spec.Postgres; pg != nil {
			spec.RegisterSecrets(spec.Secrets(pg.URL)...)
		}
		if r := st.Spec.Redis; r != nil {
			spec.RegisterSecrets(spec.Secrets(r.URL)...)
		}
	}
}

// guardSecrets masks the given secrets in everything written from now on
// (stdout and stderr go through spec.MaskWriter).
func (e *env) guardSecrets(secrets ...string) { spec.RegisterSecrets(secrets...) }
