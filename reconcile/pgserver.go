package reconcile

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/spec"
)

// planServerState plans spec.postgres.extensions, .settings and
// .resetSettings into sp (read-only: pg_settings, pg_file_settings when
// allowed, pg_extension, pg_available_extension*).
func planServerState(ctx context.Context, st *spec.Stack, db *sql.DB, o Options, sp *StackPlan) error {
	pg := st.Spec.Postgres
	if len(pg.Extensions) == 0 && len(pg.Settings) == 0 && len(pg.ResetSettings) == 0 {
		return nil
	}
	server := postgres.Server(pg.URL)
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range pg.Settings {
			if !yield(n) {
				return
			}
		}
	})
	names = append(names, pg.ResetSettings...)
	octx, cancel := context.WithTimeout(ctx, 4*o.timeout())
	defer cancel()
	live, err := postgres.ObserveSettings(octx, db, names)
	if err != nil {
		return serverError("postgres", server, err, spec.Password(pg.URL))
	}
	plan, err := postgres.DiffSettings(pg.Settings, pg.ResetSettings, live)
	if err != nil {
		// the spec names a parameter or value this server refuses
		return permanent(fmt.Errorf("spec.postgres.settings: postgres %s: %w", server, err))
	}
	for _, c := range plan.Changes {
		ch := Change{Stack: st.Metadata.Name, Kind: ResourceSetting, Name: c.Name, Resource: ResourceSetting.Address(c.Name),
			Action: ActionUpdate, Before: c.Before, After: c.After, Risk: c.Risk}
		if c.Action == postgres.SettingReset {
			ch.Action = ActionReset
		}
		sp.Changes = append(sp.Changes, ch)
	}
	for _, w := range plan.Warnings {
		sp.Warnings = append(sp.Warnings, fmt.Sprintf("postgres %s: %s", server, w))
	}
	if len(plan.PendingRestart) > 0 {
		sp.Postgres.PendingRestart = plan.PendingRestart
		sp.Warnings = append(sp.Warnings, fmt.Sprintf("postgres %s: %s applied but pending restart (pg_settings.pending_restart): restart the server to put it in force; dbops never restarts a server",
			server, strings.Join(plan.PendingRestart, ", ")))
	}
	if len(pg.Extensions) == 0 {
		return nil
	}
	x, err := postgres.ObserveExtensions(octx, db, pg.Extensions)
	if err != nil {
		return serverError("postgres", server, err, spec.Password(pg.URL))
	}
	var specPreload []string
	if v, ok := pg.Settings["shared_preload_libraries"]; ok {
		specPreload = postgres.ListElements(string(v))
	}
	preload := postgres.ListElements(live.Values["shared_preload_libraries"].Setting)
	changes, warns, err := postgres.DiffExtensions(pg.Extensions, x, preload, specPreload)
	for _, w := range warns {
		sp.Warnings = append(sp.Warnings, fmt.Sprintf("postgres %s: %s", server, w))
	}
	if err != nil {
		return permanent(fmt.Errorf("spec.postgres.extensions: postgres %s: %w", server, err))
	}
	for _, c := range changes {
		sp.Changes = append(sp.Changes, Change{Stack: st.Metadata.Name, Kind: ResourceExtension, Name: c.Name,
			Resource: ResourceExtension.Address(c.Name), Action: Action(c.Action), Before: c.Before, After: c.After, Risk: c.Risk})
	}
	return nil
}

// applyServerState runs the settings' ALTER SYSTEM statements and one
// pg_reload_conf(), then the extension changes, one by one.
func applyServerState(ctx context.Context, st *spec.Stack, c *conns, changes []Change) []ChangeResult {
	pg := st.Spec.Postgres
	fail := func(err error) string {
		return serverError("postgres", postgres.Server(pg.URL), err, spec.Password(pg.URL)).Error()
	}
	var out []ChangeResult
	var sets []postgres.SettingChange
	var setIdx []Change
	for _, ch := range changes {
		if ch.Kind != ResourceSetting {
			continue
		}
		a := postgres.SettingSet
		if ch.Action == ActionReset {
			a = postgres.SettingReset
		}
		sets = append(sets, postgres.SettingChange{Name: ch.Name, Action: a, Before: ch.Before, After: ch.After})
		setIdx = append(setIdx, ch)
	}
	if len(sets) > 0 {
		errs, reload := postgres.ApplySettings(ctx, c.pg, sets)
		for i, ch := range setIdx {
			r := ChangeResult{Change: ch, Status: StatusDone}
			switch {
			case errs[i] != nil:
				r.Status, r.Error = StatusFailed, fail(errs[i])
			case reload != nil:
				r.Status, r.Error = StatusFailed, fail(reload)
			}
			out = append(out, r)
		}
	}
	for _, ch := range changes {
		if ch.Kind != ResourceExtension {
			continue
		}
		xc := postgres.ExtensionChange{Name: ch.Name, Action: postgres.ExtensionAction(ch.Action)}
		for _, e := range pg.Extensions {
			if e.Name == ch.Name {
				xc.Version, xc.Schema = e.Version, e.Schema
			}
		}
		r := ChangeResult{Change: ch, Status: StatusDone}
		if err := postgres.ApplyExtension(ctx, c.pg, xc); err != nil {
			r.Status, r.Error = StatusFailed, fail(err)
		}
		out = append(out, r)
	}
	return out
}
