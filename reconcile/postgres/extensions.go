package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/amanat/dbops/spec"
)

// InstalledExtension is a row of pg_extension.
type InstalledExtension struct {
	Version string `json:"version"`
	Schema  string `json:"schema"`
}

// Extensions is what the database answered for the managed extensions.
type Extensions struct {
	Installed map[string]InstalledExtension
	// Available maps each extension the server has control files for to
	// its default_version (pg_available_extensions).
	Available map[string]string
	// Versions lists the installable versions (pg_available_extension_versions).
	Versions map[string][]string
	// UpdatePaths holds "name from→to" for every pinned version that
	// differs from the installed one and that the server can update to.
	UpdatePaths map[string]bool
}

// ObserveExtensions reads pg_extension, pg_available_extensions and
// pg_available_extension_versions for names, read-only.
func ObserveExtensions(ctx context.Context, db *sql.DB, want []spec.Extension) (Extensions, error) {
	names := make([]string, len(want))
	for i, e := range want {
		names[i] = e.Name
	}
	x := Extensions{Installed: map[string]InstalledExtension{}, Available: map[string]string{}, Versions: map[string][]string{}, UpdatePaths: map[string]bool{}}
	err := eachRow(ctx, db, `SELECT e.extname, e.extversion, n.nspname FROM pg_extension e
		JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = ANY($1)`, []any{names}, func(r *sql.Rows) error {
		var n string
		var ie InstalledExtension
		err := r.Scan(&n, &ie.Version, &ie.Schema)
		x.Installed[n] = ie
		return err
	})
	if err != nil {
		return x, fmt.Errorf("read pg_extension: %w", err)
	}
	err = eachRow(ctx, db, `SELECT name, coalesce(default_version, '') FROM pg_available_extensions WHERE name = ANY($1)`, []any{names}, func(r *sql.Rows) error {
		var n, v string
		err := r.Scan(&n, &v)
		x.Available[n] = v
		return err
	})
	if err != nil {
		return x, fmt.Errorf("read pg_available_extensions: %w", err)
	}
	err = eachRow(ctx, db, `SELECT name, version FROM pg_available_extension_versions WHERE name = ANY($1) ORDER BY name, version`, []any{names}, func(r *sql.Rows) error {
		var n, v string
		err := r.Scan(&n, &v)
		x.Versions[n] = append(x.Versions[n], v)
		return err
	})
	if err != nil {
		return x, fmt.Errorf("read pg_available_extension_versions: %w", err)
	}
	// the pinned versions to update to, all in one round trip
	var pn, ps, pt []string
	for _, e := range want {
		ie, ok := x.Installed[e.Name]
		if !ok || e.Version == "" || e.Version == ie.Version || !slices.Contains(x.Versions[e.Name], e.Version) {
			continue
		}
		pn, ps, pt = append(pn, e.Name), append(ps, ie.Version), append(pt, e.Version)
	}
	if len(pn) == 0 {
		return x, nil
	}
	err = eachRow(ctx, db, `SELECT w.name, w.src, w.tgt, p.path IS NOT NULL
		FROM unnest($1::text[], $2::text[], $3::text[]) AS w(name, src, tgt)
		LEFT JOIN LATERAL (SELECT u.path FROM pg_extension_update_paths(w.name) u
			WHERE u.source = w.src AND u.target = w.tgt) p ON true`, []any{pn, ps, pt}, func(r *sql.Rows) error {
		var n, from, to string
		var ok bool
		err := r.Scan(&n, &from, &to, &ok)
		x.UpdatePaths[n+" "+from+"→"+to] = ok
		return err
	})
	if err != nil {
		return x, fmt.Errorf("read pg_extension_update_paths: %w", err)
	}
	return x, nil
}

func eachRow(ctx context.Context, db *sql.DB, q string, args []any, fn func(*sql.Rows) error) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ExtensionAction is what an ExtensionChange does.
type ExtensionAction string

// Extension actions.
const (
	ExtensionCreate ExtensionAction = "create"
	ExtensionUpdate ExtensionAction = "update"
	ExtensionDrop   ExtensionAction = "drop"
)

// ExtensionChange is one CREATE, ALTER ... UPDATE TO or DROP EXTENSION.
type ExtensionChange struct {
	Name    string          `json:"name"`
	Action  ExtensionAction `json:"action"`
	Before  string          `json:"before"`
	After   string          `json:"after"`
	Version string          `json:"version,omitempty"` // pinned version to create or update to
	Schema  string          `json:"schema,omitempty"`
	Risk    string          `json:"risk,omitempty"`
}

// DiffExtensions plans the managed extensions. An extension the server does
// not have available, or a version it cannot install or update to, is an
// error naming it. preload is shared_preload_libraries now; specPreload
// what the spec sets it to (nil: not managed). Warnings say what an
// extension still needs (preloading, a restart).
func DiffExtensions(want []spec.Extension, x Extensions, preload []string, specPreload []string) ([]ExtensionChange, []string, error) {
	var out []ExtensionChange
	var warns, errs []string
	for _, e := range want {
		ie, installed := x.Installed[e.Name]
		if e.State == spec.ExtensionAbsent {
			if installed {
				out = append(out, ExtensionChange{Name: e.Name, Action: ExtensionDrop, Before: ie.Version, After: "absent",
					Risk: "DROP EXTENSION removes its objects and their data (refused by the server if other objects depend on it)"})
			}
			continue
		}
		def, available := x.Available[e.Name]
		switch {
		case !installed && !available:
			errs = append(errs, fmt.Sprintf("extension %s is not available on the server (not in pg_available_extensions): install its package on the database server (e.g. postgresql-contrib) or remove it from the spec", e.Name))
			continue
		case e.Version != "" && e.Version != ie.Version && !slices.Contains(x.Versions[e.Name], e.Version):
			errs = append(errs, fmt.Sprintf("extension %s version %s is not available on the server (it has %s)", e.Name, e.Version, strings.Join(x.Versions[e.Name], ", ")))
			continue
		case !installed:
			v := e.Version
			if v == "" {
				v = def
			}
			out = append(out, ExtensionChange{Name: e.Name, Action: ExtensionCreate, Before: "absent", After: v, Version: e.Version, Schema: e.Schema})
		case e.Version != "" && e.Version != ie.Version:
			if !x.UpdatePaths[e.Name+" "+ie.Version+"→"+e.Version] {
				errs = append(errs, fmt.Sprintf("extension %s: the server has no update path from %s to %s", e.Name, ie.Version, e.Version))
				continue
			}
			out = append(out, ExtensionChange{Name: e.Name, Action: ExtensionUpdate, Before: ie.Version, After: e.Version, Version: e.Version})
		}
		if installed && e.Schema != "" && e.Schema != ie.Schema {
			warns = append(warns, fmt.Sprintf("extension %s is in schema %s, the spec says %s: dbops does not move extensions (ALTER EXTENSION %s SET SCHEMA %s, if it is relocatable)",
				e.Name, ie.Schema, e.Schema, e.Name, e.Schema))
		}
		lib, needs := spec.NeedsPreload[e.Name]
		if !needs || slices.Contains(preload, lib) {
			continue
		}
		if slices.Contains(specPreload, lib) {
			warns = append(warns, fmt.Sprintf("extension %s needs %s in shared_preload_libraries: the spec sets it, and it takes effect when the server restarts (dbops never restarts it); until then the extension cannot be used", e.Name, lib))
			continue
		}
		add := strings.Join(append(slices.Clone(preload), lib), ",")
		warns = append(warns, fmt.Sprintf("extension %s needs %s in shared_preload_libraries, which is %q: add spec.postgres.settings.shared_preload_libraries: %q and restart the server (dbops never restarts it); until then the extension cannot be used",
			e.Name, lib, strings.Join(preload, ","), add))
	}
	if len(errs) > 0 {
		return nil, warns, errors.New(strings.Join(errs, "; "))
	}
	return out, warns, nil
}

// ApplyExtension runs one change.
func ApplyExtension(ctx context.Context, db *sql.DB, c ExtensionChange) error {
	name := pgx.Identifier{c.Name}.Sanitize()
	var stmt string
	switch c.Action {
	case ExtensionCreate:
		stmt = "CREATE EXTENSION IF NOT EXISTS " + name
		if c.Schema != "" {
			stmt += " WITH SCHEMA " + pgx.Identifier{c.Schema}.Sanitize()
		}
		if c.Version != "" {
			stmt += " VERSION " + quoteLiteral(c.Version)
		}
	case ExtensionUpdate:
		stmt = "ALTER EXTENSION " + name + " UPDATE TO " + quoteLiteral(c.Version)
	case ExtensionDrop:
		stmt = "DROP EXTENSION IF EXISTS " + name
	default:
		return fmt.Errorf("unknown extension action %q", c.Action)
	}
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	return nil
}
