package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/amanat/dbops/spec"
)

// Setting is the pg_settings row of one parameter, as seen by dbops'
// session.
type Setting struct {
	Name    string `json:"name"`
	Setting string `json:"setting"`
	Unit    string `json:"unit,omitempty"`
	Vartype string `json:"vartype"`
	// Context is when a change takes effect: postmaster (restart),
	// sighup (reload), superuser/user/backend..., internal (never).
	Context string `json:"context"`
	Source  string `json:"source"`
	// SourceFile is shown only to superusers and pg_read_all_settings.
	SourceFile     string   `json:"sourceFile,omitempty"`
	EnumVals       []string `json:"enumVals,omitempty"`
	PendingRestart bool     `json:"pendingRestart,omitempty"`
}

// Settings is what the server answered for the managed parameters.
type Settings struct {
	Values map[string]Setting
	// Unknown maps each parameter the server does not know to its own
	// error message (current_setting's).
	Unknown map[string]string
	// AutoConf holds postgresql.auto.conf (what ALTER SYSTEM wrote), read
	// from pg_file_settings when the role may (superuser, or granted);
	// nil when it may not.
	AutoConf map[string]string
	// Connections is the number of client backends now (max_connections risk).
	Connections int
}

// riskSettings are read even when not managed: risk checks and the
// preload check of extensions.
var riskSettings = []string{"shared_preload_libraries", "max_connections", "wal_level"}

// ObserveSettings reads pg_settings for names (and riskSettings),
// pg_file_settings when allowed, and the connection count, read-only.
func ObserveSettings(ctx context.Context, db *sql.DB, names []string) (Settings, error) {
	all := append(slices.Clone(names), riskSettings...)
	slices.Sort(all)
	all = slices.Compact(all)
	st := Settings{Values: map[string]Setting{}, Unknown: map[string]string{}}
	rows, err := db.QueryContext(ctx, `SELECT name, setting, coalesce(unit, ''), vartype, context, source,
		coalesce(sourcefile, ''), coalesce(array_to_json(enumvals)::text, '[]'), pending_restart
		FROM pg_settings WHERE name = ANY($1)`, all)
	if err != nil {
		return st, fmt.Errorf("read pg_settings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s Setting
		var enums string
		if err := rows.Scan(&s.Name, &s.Setting, &s.Unit, &s.Vartype, &s.Context, &s.Source, &s.SourceFile, &enums, &s.PendingRestart); err != nil {
			return st, fmt.Errorf("read pg_settings: %w", err)
		}
		if err := json.Unmarshal([]byte(enums), &s.EnumVals); err != nil {
			return st, fmt.Errorf("read pg_settings enumvals of %s: %w", s.Name, err)
		}
		st.Values[s.Name] = s
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("read pg_settings: %w", err)
	}
	for _, n := range names {
		if _, ok := st.Values[n]; ok {
			continue
		}
		// the server's own words for a name it does not know
		var v string
		err := db.QueryRowContext(ctx, "SELECT current_setting($1)", n).Scan(&v)
		var pgErr *pgconn.PgError
		switch {
		case errors.As(err, &pgErr):
			st.Unknown[n] = pgErr.Message
		case err != nil:
			return st, fmt.Errorf("read current_setting(%s): %w", n, err)
		default:
			st.Unknown[n] = "not in pg_settings"
		}
	}
	st.AutoConf, err = readAutoConf(ctx, db)
	if err != nil {
		return st, err
	}
	err = db.QueryRowContext(ctx, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'").Scan(&st.Connections)
	if err != nil {
		return st, fmt.Errorf("count connections: %w", err)
	}
	return st, nil
}

// readAutoConf reads what ALTER SYSTEM wrote. pg_file_settings is for
// superusers unless granted: "permission denied" is nil, not an error.
// Rows with an error are kept: a postmaster setting waiting for a restart
// is "setting could not be applied".
func readAutoConf(ctx context.Context, db *sql.DB) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT name, coalesce(setting, '') FROM pg_file_settings
		WHERE sourcefile LIKE '%/postgresql.auto.conf' ORDER BY seqno`)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read pg_file_settings: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, v string
		if err := rows.Scan(&n, &v); err != nil {
			return nil, err
		}
		out[n] = v // a later line wins, as when the server reads the file
	}
	return out, rows.Err()
}

// SettingAction is what a SettingChange does.
type SettingAction string

// Setting actions.
const (
	SettingSet   SettingAction = "set"   // ALTER SYSTEM SET
	SettingReset SettingAction = "reset" // ALTER SYSTEM RESET
)

// SettingChange is one ALTER SYSTEM to run.
type SettingChange struct {
	Name   string        `json:"name"`
	Action SettingAction `json:"action"`
	Before string        `json:"before"`
	After  string        `json:"after"`
	// Restart: the parameter takes effect only when the server restarts.
	Restart bool   `json:"restart,omitempty"`
	Risk    string `json:"risk,omitempty"`
}

// SettingsPlan is the settings part of a plan.
type SettingsPlan struct {
	Changes []SettingChange
	// PendingRestart lists the managed parameters whose value waits for a
	// server restart (pg_settings.pending_restart): not in sync until then.
	PendingRestart []string
	Warnings       []string
}

// DiffSettings compares the desired settings and resets with the server's
// answer. A name the server does not know, a value it would refuse or a
// parameter it cannot change are errors naming the parameter.
func DiffSettings(want map[string]spec.PGValue, reset []string, live Settings) (SettingsPlan, error) {
	var p SettingsPlan
	var errs []string
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range want {
			if !yield(n) {
				return
			}
		}
	})
	// a library's parameters (pg_stat_statements.track) exist once it is
	// loaded: when the spec preloads it and the server waits for the
	// restart, they are set after the restart, not refused
	waiting := map[string]bool{}
	if v, ok := want["shared_preload_libraries"]; ok {
		loaded := ListElements(live.Values["shared_preload_libraries"].Setting)
		for _, lib := range ListElements(string(v)) {
			waiting[lib] = !slices.Contains(loaded, lib)
		}
	}
	var later []string
	for _, n := range append(slices.Clone(names), reset...) {
		prefix, _, custom := strings.Cut(n, ".")
		if _, ok := live.Unknown[n]; ok && custom && waiting[prefix] {
			later = append(later, n)
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s belongs to %s, which the server loads when it restarts (shared_preload_libraries): dbops sets it after the restart", n, prefix))
			continue
		}
		if msg, ok := live.Unknown[n]; ok {
			errs = append(errs, fmt.Sprintf("%s: the server does not know it (%s); check the name against pg_settings (a library's parameters exist once it is loaded)", n, msg))
			continue
		}
		if s := live.Values[n]; s.Context == "internal" {
			errs = append(errs, fmt.Sprintf("%s is fixed when PostgreSQL is built or initialised (context internal): it cannot be set", n))
		}
	}
	if len(errs) > 0 {
		return p, errors.New(strings.Join(errs, "; "))
	}
	names = slices.DeleteFunc(names, func(n string) bool { return slices.Contains(later, n) })
	reset = slices.DeleteFunc(slices.Clone(reset), func(n string) bool { return slices.Contains(later, n) })
	for _, n := range names {
		s := live.Values[n]
		w := string(want[n])
		eq, err := Equal(s, s.Setting, w)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", n, err))
			continue
		}
		switch s.Source {
		case "command line", "environment variable":
			if !eq {
				errs = append(errs, fmt.Sprintf("%s is set on the server's %s, which overrides ALTER SYSTEM: change it there, or remove it there and let dbops manage it", n, s.Source))
			}
			continue
		case "database", "user", "database user", "client", "session":
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s is overridden for dbops' session (source %s): dbops compares the value its session sees", n, s.Source))
		}
		if s.PendingRestart {
			// a change already waits for a restart: is it this one?
			if v, ok := live.AutoConf[n]; ok && live.AutoConf != nil {
				if same, _ := Equal(s, v, w); !same {
					p.Changes = append(p.Changes, setChange(s, w, live))
					continue
				}
			} else if live.AutoConf != nil {
				p.Changes = append(p.Changes, setChange(s, w, live))
				continue
			}
			p.PendingRestart = append(p.PendingRestart, n)
			continue
		}
		if !eq {
			p.Changes = append(p.Changes, setChange(s, w, live))
		}
	}
	for _, n := range reset {
		s := live.Values[n]
		inAuto := false
		if live.AutoConf != nil {
			_, inAuto = live.AutoConf[n]
		} else {
			// without pg_file_settings: the value comes from a file, and
			// that file is postgresql.auto.conf as far as we may see
			inAuto = s.Source == "configuration file" && (s.SourceFile == "" || strings.HasSuffix(s.SourceFile, "postgresql.auto.conf")) && !s.PendingRestart
		}
		switch {
		case inAuto:
			c := SettingChange{Name: n, Action: SettingReset, Before: Show(s, s.Setting), After: "(reset: postgresql.conf or default)", Restart: s.Context == "postmaster"}
			c.Risk = settingRisk(s, "", live)
			p.Changes = append(p.Changes, c)
		case s.PendingRestart:
			p.PendingRestart = append(p.PendingRestart, n)
		}
	}
	if len(errs) > 0 {
		return SettingsPlan{}, errors.New(strings.Join(errs, "; "))
	}
	return p, nil
}

func setChange(s Setting, want string, live Settings) SettingChange {
	return SettingChange{Name: s.Name, Action: SettingSet, Before: Show(s, s.Setting), After: want,
		Restart: s.Context == "postmaster", Risk: settingRisk(s, want, live)}
}

// settingRisk says why changing s to want (reset: "") is risky.
func settingRisk(s Setting, want string, live Settings) string {
	var why []string
	if s.Name == "max_connections" && want != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(want)); err == nil && n < live.Connections {
			why = append(why, fmt.Sprintf("max_connections %d is below the %d connections open now", n, live.Connections))
		}
	}
	if s.Name == "wal_level" {
		why = append(why, "changing wal_level changes what replication, archiving and backups can rely on")
	}
	if s.Context == "postmaster" {
		why = append(why, "takes effect only when the server restarts (dbops never restarts it): pending restart until then")
	}
	return strings.Join(why, "; ")
}

// ApplySettings runs ALTER SYSTEM for each change, then pg_reload_conf()
// once. It returns one error per change (nil: done) and an error of the
// reload, after which the changes are written but not in force.
func ApplySettings(ctx context.Context, db *sql.DB, changes []SettingChange) ([]error, error) {
	out := make([]error, len(changes))
	// one session: its pg_conf_load_time() tells when the reload reached it
	conn, err := db.Conn(ctx)
	if err != nil {
		for i := range out {
			out[i] = err
		}
		return out, nil
	}
	defer conn.Close()
	wrote := false
	for i, c := range changes {
		stmt := "ALTER SYSTEM RESET " + c.Name
		if c.Action == SettingSet {
			stmt = "ALTER SYSTEM SET " + c.Name + " = " + literals(c.Name, c.After)
		}
		// names are checked by spec (lower-case, prefix.name); ALTER
		// SYSTEM takes no bind parameters
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			out[i] = fmt.Errorf("%s: %w", strings.SplitN(stmt, " = ", 2)[0], err)
			continue
		}
		wrote = true
	}
	if !wrote {
		return out, nil
	}
	var before time.Time
	if err := conn.QueryRowContext(ctx, "SELECT pg_conf_load_time()").Scan(&before); err != nil {
		return out, fmt.Errorf("read pg_conf_load_time(): %w", err)
	}
	if _, err := conn.ExecContext(ctx, "SELECT pg_reload_conf()"); err != nil {
		return out, fmt.Errorf("settings written to postgresql.auto.conf, but pg_reload_conf() failed, so they are not in force: %w", err)
	}
	waitReload(ctx, conn, before)
	return out, nil
}

// waitReload waits (at most 10 s) until the session has re-read the
// configuration. The postmaster reloads before it signals its children, so
// from then on new sessions (the next plan) see the new values.
func waitReload(ctx context.Context, conn *sql.Conn, before time.Time) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var t time.Time
		if err := conn.QueryRowContext(ctx, "SELECT pg_conf_load_time()").Scan(&t); err != nil || t.After(before) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// literals quotes a value for ALTER SYSTEM SET: one literal, or one per
// element of a list parameter (a single literal would be one element).
func literals(name, v string) string {
	if !listParams[name] {
		return quoteLiteral(v)
	}
	els := ListElements(v)
	if len(els) == 0 {
		return "''"
	}
	for i, e := range els {
		els[i] = quoteLiteral(e)
	}
	return strings.Join(els, ", ")
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
