package reconcile_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/render"
	"github.com/amanat/dbops/spec"
)

func TestMain(m *testing.M) { testsrv.Main(m) }

// load writes the stack YAML and loads it like the CLI does.
func load(t *testing.T, f *clitest.Fixture, yaml string) []spec.Stack {
	t.Helper()
	f.Write(t, "stack.yaml", yaml)
	res, err := spec.Load([]string{filepath.Join(f.Dir, "stack.yaml")}, spec.Options{
		Getenv: func(k string) (string, bool) { v, ok := f.Env[k]; return v, ok },
	})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return res.Stacks
}

func plan(t *testing.T, stacks []spec.Stack) *reconcile.Plan {
	t.Helper()
	return reconcile.PlanStacks(context.Background(), stacks, reconcile.Options{})
}

func mustApply(t *testing.T, stacks []spec.Stack, p *reconcile.Plan) *reconcile.Result {
	t.Helper()
	res := reconcile.Apply(context.Background(), stacks, p, reconcile.Options{})
	if res.Failed() {
		var b strings.Builder
		render.ResultText(&b, res, render.Style{})
		t.Fatalf("apply failed:\n%s", b.String())
	}
	return res
}

func planText(p *reconcile.Plan) string {
	var b strings.Builder
	render.PlanText(&b, p, render.Style{})
	return b.String()
}
