package reconcile

import (
	"context"
	"fmt"

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
