package reconcile

import (
	"errors"
	"fmt"

	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/spec"
)

// baselineChange is the plan line of a baseline: the migrations recorded as
// applied without running them, and what runs after.
func baselineChange(st *spec.Stack, m *spec.Migrations, eng postgres.Engine, live postgres.Live, mp postgres.Plan) Change {
	b := mp.Baseline
	span := func(steps []postgres.Step) string {
		first, last := eng.Name(steps[0].Version), eng.Name(steps[len(steps)-1].Version)
		if first == last {
			return first
		}
		return first + "–" + last
	}
	after := "record " + span(b.Record) + " as applied"
	if len(mp.Steps) > 0 {
		after += ", run " + span(mp.Steps)
	} else {
		after += ", nothing else to run"
	}
	table := m.Table
	if m.Schema != "" {
		table = m.Schema + "." + m.Table
	}
	before := "no " + table
	if live.TableExists {
		before = table + " empty"
	}
	return Change{Stack: st.Metadata.Name, Kind: ResourceMigration, Resource: ResourceMigration.Address("baseline"),
		Name: b.Name, Action: ActionBaseline, Version: b.Version, Before: before, After: after}
}

// migrationResults turns what the engine did into one result per change.
func migrationResults(migs []Change, done []postgres.Step, err error, fail func(error) string) []ChangeResult {
	ran := map[int64]int{} // version → retries after a lock timeout
	for _, s := range done {
		ran[s.Version] = s.Retries
	}
	var merr *postgres.MigrationError
	errors.As(err, &merr)
	out := make([]ChangeResult, len(migs))
	for i, ch := range migs {
		out[i] = ChangeResult{Change: ch, Status: StatusSkipped}
		switch {
		case ch.Action == ActionBaseline && (err == nil || len(done) > 0):
			out[i].Status = StatusDone
		case ch.Action != ActionBaseline && hasKey(ran, ch.Version):
			out[i].Status, out[i].Retries = StatusDone, ran[ch.Version]
		case merr != nil && merr.Version == ch.Version && ch.Action != ActionBaseline:
			out[i].Status, out[i].Retries = StatusFailed, merr.Retries
			out[i].Error = fail(err)
		case errors.Is(err, postgres.ErrInterrupted):
			out[i].Error = NotStarted
		case merr != nil:
			out[i].Error = fmt.Sprintf("not applied: %s failed", merr.File)
		case err != nil:
			out[i].Status = StatusFailed
			out[i].Error = fail(fmt.Errorf("migrating: %w", err))
		}
	}
	return out
}

func hasKey[K comparable, V any](m map[K]V, k K) bool {
	_, ok := m[k]
	return ok
}
