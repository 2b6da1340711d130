// Command dbops keeps a PostgreSQL + Redis stack in the state its YAML spec
// declares: validate the spec, plan the changes, apply them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/amanat/dbops/spec"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// Every credential spec.Load sees is masked in all output, a second line
	// of defence behind the redaction done where messages are made.
	stdout, stderr = spec.MaskWriter(stdout), spec.MaskWriter(stderr)
	cmd := newRootCommand(&env{stdin: stdin, stdout: stdout, stderr: stderr})
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	var ec exitError
	if errors.As(err, &ec) {
		if ec.msg != "" {
			fmt.Fprintln(stderr, "dbops:", ec.msg)
		}
		return ec.code
	}
	if err != nil {
		fmt.Fprintln(stderr, "dbops:", err)
		return 1
	}
	return 0
}

// exitError ends a command with a given exit code.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return fmt.Sprintf("exit %d: %s", e.code, e.msg) }
