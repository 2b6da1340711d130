package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/render"
	"github.com/amanat/dbops/spec"
)

type applyCommand struct {
	*env
	autoApprove bool
	allowRisky  bool
	grace       time.Duration
	interval    time.Duration // of "still running" lines; a flag so tests need not wait 10 s
	format      string
	// loopIdle: dbops sessions idle this long are taken for a dbops run's
	// pooled sessions (a flag so tests need not wait).
	loopIdle time.Duration
	// holdLocksMax: with more stacks than this on one PostgreSQL server,
	// each stack is locked only while it is applied (lockEach).
	holdLocksMax int
	lockEach     bool
}

// human is where the plan, the progress and the summary go: stdout, or
// stderr when stdout carries JSON.
func (c *applyCommand) human() io.Writer {
	if c.format == "json" {
		return c.stderr
	}
	return c.stdout
}

func newApplyCommand(e *env) *cobra.Command {
	c := &applyCommand{env: e}
	cmd := &cobra.Command{
		Use:   "apply [PATH...] | apply PLAN.json",
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
--auto-approve is given. Each change is printed when it starts and when it
ends, with its duration; one running longer than 10s says so every 10s. On
a terminal a running backup shows the bytes written and the rate.

Ctrl-C at the prompt cancels at once. Ctrl-C while applying starts no further
change: the migration running gets --grace to finish, then its transaction is
rolled back; apply says which, and exits 130.

Apply takes each stack's lock, the one dbops run takes to apply, for its whole
run: when a dbops run (or another apply) is applying to a stack, apply warns,
naming the holder, and waits for it rather than interleaving.

Exit status: 0 when everything applied, 3 when the rest applied but risky
changes wait for a maintenance window, 130 when interrupted, 1 otherwise.

Given a plan saved with ` + "`dbops plan --out PLAN.json`" + `, apply applies exactly that
plan, without asking: it first observes again and refuses, naming what moved,
when the live state or the spec files no longer match the saved fingerprint.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return c.run(cmd, args) },
	}
	cmd.Flags().BoolVar(&c.autoApprove, "auto-approve", false, "apply without asking")
	cmd.Flags().BoolVar(&c.allowRisky, "allow-risky", false, "apply risky changes (down migrations, destructive SQL, risky Redis settings) outside maintenance windows")
	cmd.Flags().StringVar(&c.format, "format", "text", "output format: text, or json (schemas/apply.schema.json) on stdout with the plan and progress on stderr; json needs --auto-approve or a saved plan")
	cmd.Flags().DurationVar(&c.grace, "grace", reconcile.DefaultGrace, "on Ctrl-C, how long the running migration may finish before it is cancelled and rolled back")
	cmd.Flags().DurationVar(&c.interval, "progress-interval", DefaultProgressInterval, "how often a long change says it is still running")
	cmd.Flags().MarkHidden("progress-interval")
	cmd.Flags().IntVar(&c.holdLocksMax, "hold-locks-max", 32, "most stacks on one PostgreSQL server whose locks apply holds from planning to the end (a session each); with more, each stack is locked only while it is applied, re-planned under its lock and not applied if it changed since the plan shown")
	cmd.Flags().DurationVar(&c.loopIdle, "loop-idle", 30*time.Second, "dbops sessions idle this long are taken for a dbops run's")
	cmd.Flags().MarkHidden("loop-idle")
	return cmd
}

func (c *applyCommand) run(cmd *cobra.Command, args []string) error {
	if err := checkFormat(c.format, "text", "json"); err != nil {
		return err
	}
	useParseCache()
	if saved, ok, err := readSaved(c.paths(args)); ok || err != nil {
		if err != nil {
			return exitError{code: 1, msg: err.Error()}
		}
		return c.applySaved(cmd, c.paths(args)[0], saved)
	}
	h := c.human()
	style := c.styleFor(h)
	interactive := isTerminal(c.stdin) && isTerminal(h)
	res, err := c.load(c.paths(args), false)
	if err != nil {
		return err
	}
	c.guard(res.Stacks)
	release, unlocked, err := c.lockStacks(cmd.Context(), res.Stacks)
	if err != nil {
		return err
	}
	defer release()
	plan := reconcile.PlanStacks(cmd.Context(), res.Stacks, c.applyOptions())
	refuseUnlocked(plan, unlocked)
	if c.lockEach {
		fmt.Fprintf(c.stderr, "note: more than %d stacks on one PostgreSQL server (--hold-locks-max): each stack is locked only while it is applied, planned again under its lock, and not applied if it changed since this plan.\n", c.holdLocksMax)
	}
	render.PlanText(h, plan, style)
	if !plan.HasChanges() {
		if err := c.writeJSON(unapplied(plan), false); err != nil {
			return err
		}
		if plan.HasErrors() {
			return exitError{code: 1}
		}
		return nil
	}
	if !c.autoApprove {
		if !interactive || c.format == "json" {
			return exitError{code: 1, msg: "refusing to apply without --auto-approve: no terminal to ask for confirmation (or --format json); nothing was changed"}
		}
		fmt.Fprint(h, "\nApply these changes? Only 'yes' is accepted: ")
		answer, err := c.ask(cmd.Context())
		if err != nil {
			fmt.Fprintln(h)
			return exitError{code: 130, msg: "apply cancelled; nothing was changed"}
		}
		if strings.TrimSpace(answer) != "yes" {
			return exitError{code: 1, msg: "apply cancelled; nothing was changed"}
		}
	}
	fmt.Fprintln(h)
	result, err := c.apply(cmd.Context(), res.Stacks, plan)
	if err != nil {
		return err
	}
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

// ask reads the answer to the prompt; Ctrl-C (a cancelled ctx) ends the
// wait at once rather than at the next Enter.
func (c *applyCommand) ask(ctx context.Context) (string, error) {
	answer := make(chan string, 1)
	go func() { // left blocked on stdin if cancelled: the process exits
		s, _ := bufio.NewReader(c.stdin).ReadString('\n')
		answer <- s
	}()
	select {
	case s := <-answer:
		return s, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// apply applies the plan with progress lines; after Ctrl-C it says how the
// change running then ended and exits 130.
func (c *applyCommand) apply(ctx context.Context, stacks []spec.Stack, plan *reconcile.Plan) (*reconcile.Result, error) {
	h := c.human()
	style := c.styleFor(h)
	p := newProgress(h, style, isTerminal(h), c.interval)
	stop := context.AfterFunc(ctx, func() { p.interrupt(c.grace) })
	o := c.applyOptions()
	o.Progress = p
	if c.lockEach {
		o.Lock = c.lockToApply
	}
	result := reconcile.Apply(ctx, stacks, plan, o)
	stop()
	p.close()
	fmt.Fprintln(h)
	render.ResultText(h, result, style)
	if err := c.writeJSON(result, ctx.Err() != nil); err != nil {
		return result, err
	}
	if ctx.Err() != nil {
		return result, exitError{code: 130, msg: "interrupted: " + strings.Join(p.interruptedOutcome(result), "; ")}
	}
	return result, nil
}

// applyDoc is apply's JSON output (schemas/apply.schema.json).
type applyDoc struct {
	FormatVersion string                  `json:"formatVersion"`
	Interrupted   bool                    `json:"interrupted"`
	Stacks        []reconcile.StackResult `json:"stacks"`
}

// writeJSON prints the result on stdout with --format json.
func (c *applyCommand) writeJSON(r *reconcile.Result, interrupted bool) error {
	if c.format != "json" {
		return nil
	}
	doc := applyDoc{FormatVersion: "dbops.apply/v1", Interrupted: interrupted, Stacks: r.Stacks}
	if doc.Stacks == nil {
		doc.Stacks = []reconcile.StackResult{}
	}
	return writeJSON(c.stdout, doc)
}

// unapplied is the result of a plan with nothing to apply: each stack, with
// the errors that kept it from being planned.
func unapplied(p *reconcile.Plan) *reconcile.Result {
	r := &reconcile.Result{}
	for _, sp := range p.Stacks {
		r.Stacks = append(r.Stacks, reconcile.StackResult{Stack: sp.Stack, Changes: []reconcile.ChangeResult{}, Errors: sp.Errors})
	}
	return r
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
	release, unlocked, err := c.lockStacks(cmd.Context(), res.Stacks)
	if err != nil {
		return err
	}
	defer release()
	fresh := reconcile.PlanStacks(cmd.Context(), res.Stacks, c.options())
	refuseUnlocked(saved.Plan, unlocked)
	if moved := saved.Moved(fresh, now); len(moved) > 0 {
		for _, m := range moved {
			fmt.Fprintln(c.stderr, "  "+m)
		}
		return exitError{code: 1, msg: fmt.Sprintf("refusing to apply %s: %d thing(s) moved since it was planned (listed above); nothing was changed. Plan again.", file, len(moved))}
	}
	render.PlanText(c.human(), saved.Plan, c.styleFor(c.human()))
	fmt.Fprintln(c.human())
	result, err := c.apply(cmd.Context(), res.Stacks, saved.Plan)
	if err != nil {
		return err
	}
	return applyExit(result, false)
}

func (c *applyCommand) applyOptions() reconcile.Options {
	o := c.options()
	o.AllowRisky = c.allowRisky
	o.Grace = c.grace
	return o
}
