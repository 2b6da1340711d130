package reconcile

import (
	"context"

	"github.com/amanat/dbops/reconcile/postgres"
)

// Progress hears of each change as Apply starts and ends it, so a person
// watching sees long work move. Stacks are applied concurrently: the calls
// may come from several goroutines.
type Progress interface {
	Started(c Change)
	// Written is the bytes a running backup has written so far.
	Written(c Change, total int64)
	Finished(r ChangeResult)
}

// NotStarted is the error of a change Apply did not start because its
// context was cancelled (Ctrl-C, shutdown).
const NotStarted = "not started: interrupted (Ctrl-C or shutdown)"

type noProgress struct{}

func (noProgress) Started(Change)        {}
func (noProgress) Written(Change, int64) {}
func (noProgress) Finished(ChangeResult) {}

func (o Options) progress() Progress {
	if o.Progress == nil {
		return noProgress{}
	}
	return o.Progress
}

// around reports changes started, runs fn, and reports its results.
func (o Options) around(changes []Change, fn func() []ChangeResult) []ChangeResult {
	p := o.progress()
	for _, c := range changes {
		p.Started(c)
	}
	out := fn()
	for _, r := range out {
		p.Finished(r)
	}
	return out
}

// migrationStarted maps each migration step goose or drizzle starts to its
// change in the plan, for Progress.
func (o Options) migrationStarted(migs []Change, fail func(error) string) func(postgres.Step) func(error) {
	p := o.progress()
	return func(s postgres.Step) func(error) {
		ch := Change{Kind: ResourceMigration, Name: s.File, Version: s.Version, Action: ActionUp}
		for _, c := range migs {
			if c.Version == s.Version && (c.Action == ActionDown) == s.Down && c.Action != ActionBaseline {
				ch = c
			}
		}
		p.Started(ch)
		return func(err error) {
			r := ChangeResult{Change: ch, Status: StatusDone}
			if err != nil {
				r.Status, r.Error = StatusFailed, fail(err)
			}
			p.Finished(r)
		}
	}
}

// interrupted marks changes not started because ctx ended.
func interrupted(ctx context.Context, changes []Change) ([]ChangeResult, bool) {
	if ctx.Err() == nil || len(changes) == 0 {
		return nil, false
	}
	return outcome(changes, StatusSkipped, NotStarted), true
}
