package reconcile_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
)

func extVersion(t *testing.T, url, name string) string {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	err = db.QueryRow("SELECT extversion FROM pg_extension WHERE extname = $1", name).Scan(&v)
	if err == sql.ErrNoRows {
		return "absent"
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPostgresExtensions(t *testing.T) {
	url := testsrv.PostgresDB(t)
	steps := []struct {
		name, body string
		action     reconcile.Action
		risky      bool
		after      string // extversion once applied
	}{
		{"create at a pinned version", `{name: pg_trgm, version: "1.4", schema: public}`, reconcile.ActionCreate, false, "1.4"},
		{"update to a newer one", `{name: pg_trgm, version: "1.6"}`, reconcile.ActionUpdate, false, "1.6"},
		{"unpinned: left at its version", `{name: pg_trgm}`, "", false, "1.6"},
		{"absent drops, risky", `{name: pg_trgm, state: absent}`, reconcile.ActionDrop, true, "absent"},
		{"create at the default version", `{name: pg_trgm}`, reconcile.ActionCreate, false, "1.6"},
	}
	for _, s := range steps {
		stacks := pgStack(t, url, "    extensions:\n      - "+s.body+"\n")
		p := plan(t, stacks)
		if e := planErrors(p); e != "" {
			t.Fatalf("%s: plan errors: %s", s.name, e)
		}
		got := byKind(p, reconcile.ResourceExtension)
		if s.action == "" {
			if len(p.Stacks[0].Changes) != 0 || !strings.Contains(planText(p), "in sync") {
				t.Fatalf("%s: want in sync, plan:\n%s", s.name, planText(p))
			}
			continue
		}
		c, ok := got["pg_trgm"]
		if !ok || c.Action != s.action || (c.Risk != "") != s.risky {
			t.Fatalf("%s: want %s (risky %v), plan:\n%s", s.name, s.action, s.risky, planText(p))
		}
		validPlanJSON(t, p)
		if s.risky {
			res := reconcile.Apply(context.Background(), stacks, p, reconcile.Options{})
			if st := res.Stacks[0].Changes[0].Status; st != reconcile.StatusRefused {
				t.Fatalf("%s: without --allow-risky status %s, want refused", s.name, st)
			}
			if v := extVersion(t, url, "pg_trgm"); v == "absent" {
				t.Fatalf("%s: a refused drop dropped the extension", s.name)
			}
			res = reconcile.Apply(context.Background(), stacks, p, reconcile.Options{AllowRisky: true})
			if res.Failed() {
				t.Fatalf("%s: apply --allow-risky failed: %+v", s.name, res.Stacks[0])
			}
		} else {
			mustApply(t, stacks, p)
		}
		if v := extVersion(t, url, "pg_trgm"); v != s.after {
			t.Fatalf("%s: extversion %s, want %s", s.name, v, s.after)
		}
		if p := plan(t, stacks); len(p.Stacks[0].Changes) != 0 {
			t.Fatalf("%s: not in sync after apply:\n%s", s.name, planText(p))
		}
	}
}

func TestPostgresExtensionsRefused(t *testing.T) {
	url := testsrv.PostgresDB(t)
	cases := []struct{ name, body, want string }{
		{"not available", "{name: no_such_extension}", "extension no_such_extension is not available on the server"},
		{"version not available", `{name: pg_trgm, version: "9.9"}`, "extension pg_trgm version 9.9 is not available on the server (it has 1.3, 1.4, 1.5, 1.6)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := plan(t, pgStack(t, url, "    extensions:\n      - "+c.body+"\n"))
			errs := p.Stacks[0].Errors
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), c.want) || !strings.Contains(errs[0].Error(), "spec.postgres.extensions") {
				t.Fatalf("errors %v, want one naming spec.postgres.extensions and %q", errs, c.want)
			}
			if reconcile.ClassOf(errs[0]) != reconcile.ClassPermanent {
				t.Errorf("class %v, want permanent", reconcile.ClassOf(errs[0]))
			}
		})
	}
}

// TestPostgresPreloadAndRestart: pg_stat_statements needs
// shared_preload_libraries (a postmaster setting). The plan says what to
// add; setting it is risky and pending restart until the server restarts
// (here, a real restart); then the extension works.
func TestPostgresPreloadAndRestart(t *testing.T) {
	pg := ownPostgres(t)
	url := pg.URL("postgres")
	ext := pgStack(t, url, "    extensions:\n      - name: pg_stat_statements\n")
	p := plan(t, ext)
	want := `extension pg_stat_statements needs pg_stat_statements in shared_preload_libraries, which is "": add spec.postgres.settings.shared_preload_libraries: "pg_stat_statements" and restart the server`
	if !strings.Contains(strings.Join(p.Stacks[0].Warnings, "\n"), want) {
		t.Fatalf("warnings %q, want %q", p.Stacks[0].Warnings, want)
	}

	// pg_stat_statements.track exists once the library is loaded: set after the restart
	set := pgStack(t, url, "    settings:\n      shared_preload_libraries: pg_stat_statements\n      pg_stat_statements.track: all\n")
	p = plan(t, set)
	c, ok := byKind(p, reconcile.ResourceSetting)["shared_preload_libraries"]
	if !ok || !strings.Contains(c.Risk, "takes effect only when the server restarts") {
		t.Fatalf("want a risky shared_preload_libraries change, plan:\n%s", planText(p))
	}
	if res := reconcile.Apply(context.Background(), set, p, reconcile.Options{}); res.Stacks[0].Changes[0].Status != reconcile.StatusRefused {
		t.Fatalf("a postmaster setting applied without --allow-risky: %+v", res.Stacks[0].Changes)
	}
	if res := reconcile.Apply(context.Background(), set, p, reconcile.Options{AllowRisky: true}); res.Failed() {
		t.Fatalf("apply --allow-risky: %+v", res.Stacks[0])
	}
	pending := eventually(t, set, reconcile.Options{}, "pending restart", func(p *reconcile.Plan) bool {
		return p.Stacks[0].Postgres != nil && len(p.Stacks[0].Postgres.PendingRestart) > 0
	})
	text := planText(pending)
	if len(pending.Stacks[0].Changes) != 0 || strings.Contains(text, "in sync") || !strings.Contains(text, "pending restart: shared_preload_libraries") {
		t.Fatalf("before the restart, want no change, pending restart and never \"in sync\":\n%s", text)
	}
	validPlanJSON(t, pending)
	if w := strings.Join(pending.Stacks[0].Warnings, "\n"); !strings.Contains(w, "pg_stat_statements.track belongs to pg_stat_statements, which the server loads when it restarts") {
		t.Errorf("warnings before restart: %s", w)
	}
	// the spec's setting is known now: the extension's plan says it waits for the restart
	both := pgStack(t, url, "    settings:\n      shared_preload_libraries: pg_stat_statements\n    extensions:\n      - name: pg_stat_statements\n")
	if w := strings.Join(plan(t, both).Stacks[0].Warnings, "\n"); !strings.Contains(w, "the spec sets it, and it takes effect when the server restarts") {
		t.Errorf("warnings before restart: %s", w)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := pg.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// after the restart the library's parameter is known, and set
	p = plan(t, set)
	if c := byKind(p, reconcile.ResourceSetting); len(c) != 1 || c["pg_stat_statements.track"].After != "all" || p.Stacks[0].Postgres.PendingRestart != nil {
		t.Fatalf("after the restart, want only pg_stat_statements.track set:\n%s", planText(p))
	}
	mustApply(t, set, p)
	p = plan(t, set)
	if text := planText(p); len(p.Stacks[0].Changes) != 0 || p.Stacks[0].Postgres.PendingRestart != nil || !strings.Contains(text, "in sync") {
		t.Fatalf("after the restart and apply, want in sync:\n%s", text)
	}
	p = plan(t, both)
	if len(p.Stacks[0].Warnings) != 0 || byKind(p, reconcile.ResourceExtension)["pg_stat_statements"].Action != reconcile.ActionCreate {
		t.Fatalf("after the restart, want a plain create:\n%s", planText(p))
	}
	mustApply(t, both, p)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM pg_stat_statements").Scan(&n); err != nil {
		t.Fatalf("pg_stat_statements after restart and create: %v", err)
	}
}

// TestPostgresSettingsLeastGrant: a plan works with read-only credentials
// (pg_settings is readable by any role; pg_file_settings is not, and is
// not needed); applying needs ALTER SYSTEM on the parameter (PG 15+).
func TestPostgresSettingsLeastGrant(t *testing.T) {
	pg := ownPostgres(t)
	ctx := context.Background()
	if err := pg.Exec(ctx, "postgres", "CREATE ROLE reader LOGIN PASSWORD 'rpass'"); err != nil {
		t.Fatal(err)
	}
	url := pg.URLAs("reader", "rpass", "postgres")
	stacks := pgStack(t, url, "    settings: {statement_timeout: 45s}\n    extensions: [{name: pg_trgm}]\n")
	p := plan(t, stacks)
	if e := planErrors(p); e != "" || byKind(p, reconcile.ResourceSetting)["statement_timeout"].After != "45s" {
		t.Fatalf("read-only plan: errors %q\n%s", e, planText(p))
	}
	res := reconcile.Apply(ctx, stacks, p, reconcile.Options{})
	var failed string
	for _, c := range res.Stacks[0].Changes {
		if c.Kind == reconcile.ResourceSetting {
			failed = c.Error
		}
	}
	if !strings.Contains(failed, "permission denied") {
		t.Fatalf("ALTER SYSTEM without the grant: %q, want permission denied", failed)
	}
	if !strings.Contains(failed, "ALTER SYSTEM") {
		t.Errorf("the error should name the statement: %q", failed)
	}
	// the least grant (README): ALTER SYSTEM on the parameter, and pg_reload_conf()
	if err := pg.Exec(ctx, "postgres", "GRANT ALTER SYSTEM ON PARAMETER statement_timeout TO reader; GRANT EXECUTE ON FUNCTION pg_reload_conf() TO reader"); err != nil {
		t.Fatal(err)
	}
	stacks = pgStack(t, url, "    settings: {statement_timeout: 45s}\n")
	mustApply(t, stacks, plan(t, stacks))
	eventually(t, stacks, reconcile.Options{}, "granted setting in force", func(p *reconcile.Plan) bool {
		return len(p.Stacks[0].Changes) == 0 && len(p.Stacks[0].Errors) == 0
	})
}

// TestManagedExtensionsAreNotDrift: an extension spec.postgres.extensions
// manages is not schema drift (the migrations do not create it, dbops does).
func TestManagedExtensionsAreNotDrift(t *testing.T) {
	url := testsrv.PostgresDB(t)
	f := clitest.NewFixture(t, map[string]string{"00001_t.sql": clitest.Mig("CREATE TABLE t (id int);", "DROP TABLE t;")})
	f.Env["PG_URL"] = url
	stacks := load(t, f, `apiVersion: dbops/v1
kind: Stack
metadata: {name: drifty}
spec:
  postgres:
    url: ${PG_URL}
    migrations: {dir: ./migrations}
    drift: {}
    extensions: [{name: pg_trgm}]
`)
	o := reconcile.Options{} // no cache: the expected schema is built each time
	mustApply(t, stacks, reconcile.PlanStacks(context.Background(), stacks, o))
	if v := extVersion(t, url, "pg_trgm"); v == "absent" {
		t.Fatal("pg_trgm not created")
	}
	p := reconcile.PlanStacks(context.Background(), stacks, o)
	d := p.Stacks[0].Postgres.Drift
	if d == nil || d.Error != "" || len(d.Items) != 0 {
		t.Fatalf("drift of a managed extension: %+v\n%s", d, planText(p))
	}
	// an extension the spec does not manage is still drift
	if _, err := testsrv.OpenDB(t, url).Exec("CREATE EXTENSION btree_gin"); err != nil {
		t.Fatal(err)
	}
	p = reconcile.PlanStacks(context.Background(), stacks, o)
	if d := p.Stacks[0].Postgres.Drift; d == nil || len(d.Items) != 1 || d.Items[0].Name != "btree_gin" {
		t.Fatalf("unmanaged extension not reported as drift: %+v", d)
	}
}
