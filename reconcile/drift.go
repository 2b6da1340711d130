package reconcile

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/amanat/dbops/reconcile/drift"
	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/spec"
)

// DriftStatus is a stack's schema drift as plan found it: computed only
// when spec.postgres.drift is set and Options.SkipDrift is not.
type DriftStatus struct {
	Policy string `json:"policy"`
	// Level is the live migration level compared at.
	Level string `json:"level,omitempty"`
	// Objects counts the objects of the expected schema.
	Objects int `json:"objects"`
	// Expected is where the expected schema came from: cache or scratch.
	Expected string       `json:"expected,omitempty"`
	Items    []drift.Item `json:"items"`
	// Unavailable: no cached expected schema and none could be built
	// (e.g. read-only credentials without CREATEDB); Error says why.
	Unavailable bool `json:"unavailable,omitempty"`
	// Error says why drift could not be checked. It is not a plan error:
	// the plan of migrations and settings stands.
	Error string `json:"error,omitempty"`
}

// scratchFor is where st's expected schema is built, and whether that is
// the stack's own server.
func scratchFor(pg *spec.Postgres) (string, bool) {
	if d := pg.Drift; d != nil && !d.SameServer() {
		return d.Scratch, false
	}
	return pg.URL, true
}

// checkDrift runs drift.Check on db with st's scratch and o's cache; its
// errors name the server without credentials (the scratch server's too).
func checkDrift(ctx context.Context, st *spec.Stack, db *sql.DB, o Options) (drift.Report, error) {
	pg := st.Spec.Postgres
	scratch, same := scratchFor(pg)
	r, err := drift.Check(ctx, pg.Migrations, db, scratch, same, o.DriftCache)
	if err != nil {
		e := serverError("postgres", postgres.Server(pg.URL), errors.New(spec.Scrub(err.Error(), spec.Password(scratch))), spec.Password(pg.URL))
		if errors.Is(err, drift.ErrUnavailable) {
			e = unavailable{e}
		}
		return r, e
	}
	// extensions spec.postgres.extensions manages are dbops' doing, not
	// drift from the migrations (objects they own are already left out)
	r.Items = slices.DeleteFunc(r.Items, func(it drift.Item) bool {
		return it.Kind == "extension" && slices.ContainsFunc(pg.Extensions, func(e spec.Extension) bool { return e.Name == it.Name })
	})
	return r, nil
}

// unavailable keeps drift.ErrUnavailable recognisable through serverError,
// which cannot wrap the driver's text.
type unavailable struct{ error }

func (u unavailable) Is(target error) bool { return target == drift.ErrUnavailable }
func (u unavailable) Unwrap() error        { return u.error }

// Drift compares stack st's live schema with the one its applied
// migrations produce (reconcile/drift). The live database is read on a
// read-only connection; the scratch database goes where
// spec.postgres.drift.scratch says (the stack's server by default).
func Drift(ctx context.Context, st *spec.Stack, o Options) (drift.Report, error) {
	pg := st.Spec.Postgres
	if pg == nil || pg.Migrations == nil {
		return drift.Report{}, fmt.Errorf("stack %s has no postgres migrations to compare with", st.Metadata.Name)
	}
	db, err := postgres.Open(pg.URL, o.timeout(), true)
	if err != nil {
		return drift.Report{}, err
	}
	defer db.Close()
	return checkDrift(ctx, st, db, o)
}

// planDrift is the drift part of a stack's plan. The live database is read
// on the plan's read-only session; on a cache miss the expected schema is
// built in a scratch database (never in the live one).
func planDrift(ctx context.Context, st *spec.Stack, db *sql.DB, o Options) *DriftStatus {
	pg := st.Spec.Postgres
	ds := &DriftStatus{Policy: pg.Drift.Policy, Items: []drift.Item{}}
	r, err := checkDrift(ctx, st, db, o)
	ds.Level, ds.Objects, ds.Expected = r.Level, r.Objects, r.Expected
	if err != nil {
		ds.Error, ds.Unavailable, ds.Expected = err.Error(), errors.Is(err, drift.ErrUnavailable), ""
		if ds.Unavailable {
			ds.Error += fmt.Sprintf(" (run `dbops drift %s PATH` once with a role that has CREATEDB to cache it, or set spec.postgres.drift.scratch to a server where it can be built)", st.Metadata.Name)
		}
		return ds
	}
	for _, it := range r.Items {
		it.SQL = "" // `dbops drift --sql` shows it
		ds.Items = append(ds.Items, it)
	}
	return ds
}

// blockedByDrift says why migrations must not run on a drifted database
// under drift.policy block ("" when they may). A check that cannot run
// blocks too: block promises not to migrate an unchecked database. A
// baseline adopts an existing schema, so it is not checked.
func blockedByDrift(ctx context.Context, st *spec.Stack, c *conns, p postgres.Plan, o Options) string {
	pg := st.Spec.Postgres
	if pg.Drift == nil || pg.Drift.Policy != spec.DriftPolicyBlock || p.Baseline != nil || len(p.Steps) == 0 {
		return ""
	}
	r, err := checkDrift(ctx, st, c.pg, o)
	if err != nil {
		return fmt.Sprintf("refused by spec.postgres.drift.policy block: the schema drift check failed: %v", err)
	}
	return blockMessage(st, r.Items)
}

// blockMessage is "" without items, else why apply refuses.
func blockMessage(st *spec.Stack, items []drift.Item) string {
	if len(items) == 0 {
		return ""
	}
	shown := make([]string, 0, 3)
	for _, it := range items[:min(3, len(items))] {
		shown = append(shown, it.String())
	}
	more := ""
	if len(items) > 3 {
		more = fmt.Sprintf(" and %d more", len(items)-3)
	}
	return fmt.Sprintf("refused by spec.postgres.drift.policy block: %d schema object(s) drifted from the migrations (%s%s); reconcile them by a migration or by hand (dbops drift %s PATH --sql shows each), or set policy: report",
		len(items), strings.Join(shown, "; "), more, st.Metadata.Name)
}

// driftWarning tells, under policy block, that apply will refuse the
// plan's migrations because of the drift plan found.
func driftWarning(sp *StackPlan, st *spec.Stack) {
	if sp.Postgres == nil || sp.Postgres.Drift == nil || sp.Postgres.Drift.Policy != spec.DriftPolicyBlock {
		return
	}
	if !hasKind(sp.Changes, ResourceMigration) || slices.ContainsFunc(sp.Changes, func(c Change) bool { return c.Action == ActionBaseline }) {
		return
	}
	if msg := blockMessage(st, sp.Postgres.Drift.Items); msg != "" {
		sp.Warnings = append(sp.Warnings, "apply will refuse the migrations: "+msg)
	}
}
