package reconcile

import (
	"context"
	"fmt"
	"strings"

	"github.com/amanat/dbops/reconcile/drift"
	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/spec"
)

// Drift compares stack st's live schema with the one its applied
// migrations produce (reconcile/drift). The live database is read on a
// read-only connection; the scratch database goes where
// spec.postgres.drift.scratch says (the stack's server by default).
func Drift(ctx context.Context, st *spec.Stack, o Options) (drift.Report, error) {
	pg := st.Spec.Postgres
	if pg == nil || pg.Migrations == nil {
		return drift.Report{}, fmt.Errorf("stack %s has no postgres migrations to compare with", st.Metadata.Name)
	}
	scratch := pg.URL
	if d := pg.Drift; d != nil && !d.SameServer() {
		scratch = d.Scratch
	}
	db, err := postgres.Open(pg.URL, o.timeout(), true)
	if err != nil {
		return drift.Report{}, err
	}
	defer db.Close()
	r, err := drift.Check(ctx, pg.Migrations, db, scratch)
	if err != nil {
		err = fmt.Errorf("%s", spec.Scrub(err.Error(), spec.Password(scratch))) // a scratch server's password too
		return drift.Report{}, serverError("postgres", postgres.Server(pg.URL), err, spec.Password(pg.URL))
	}
	return r, nil
}

// blockedByDrift says why migrations must not run on a drifted database
// under drift.policy block ("" when they may). A check that cannot run
// blocks too: block promises not to migrate an unchecked database. A
// baseline adopts an existing schema, so it is not checked.
func blockedByDrift(ctx context.Context, st *spec.Stack, c *conns, p postgres.Plan) string {
	pg := st.Spec.Postgres
	if pg.Drift == nil || pg.Drift.Policy != spec.DriftPolicyBlock || p.Baseline != nil || len(p.Steps) == 0 {
		return ""
	}
	scratch := pg.URL
	if !pg.Drift.SameServer() {
		scratch = pg.Drift.Scratch
	}
	r, err := drift.Check(ctx, pg.Migrations, c.pg, scratch)
	if err != nil {
		err = fmt.Errorf("%s", spec.Scrub(err.Error(), spec.Password(scratch)))
		return fmt.Sprintf("refused by spec.postgres.drift.policy block: the schema drift check failed: %v", serverError("postgres", postgres.Server(pg.URL), err, spec.Password(pg.URL)))
	}
	if len(r.Items) == 0 {
		return ""
	}
	shown := make([]string, 0, 3)
	for _, it := range r.Items[:min(3, len(r.Items))] {
		shown = append(shown, it.String())
	}
	more := ""
	if len(r.Items) > 3 {
		more = fmt.Sprintf(" and %d more", len(r.Items)-3)
	}
	return fmt.Sprintf("refused by spec.postgres.drift.policy block: %d schema object(s) drifted from the migrations (%s%s); reconcile them by a migration or by hand (dbops drift %s PATH --sql shows each), or set policy: report",
		len(r.Items), strings.Join(shown, "; "), more, st.Metadata.Name)
}
