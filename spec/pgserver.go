package spec

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ServerState is the server-level state of spec.postgres: extensions
// of the stack's database and server settings (ALTER SYSTEM). Only what is
// listed is managed.
type ServerState struct {
	// Extensions are CREATE EXTENSION'd (or dropped with state: absent)
	// in the stack's database.
	Extensions []Extension `json:"extensions,omitempty"`
	// Settings are server parameters set with ALTER SYSTEM SET.
	Settings map[string]PGValue `json:"settings,omitempty"`
	// ResetSettings are parameters ALTER SYSTEM RESET removes from
	// postgresql.auto.conf; a setting merely dropped from Settings is left
	// as it is.
	ResetSettings []string `json:"resetSettings,omitempty"`
}

// ExtensionState is present (default) or absent.
type ExtensionState string

// Extension states.
const (
	ExtensionPresent ExtensionState = "present"
	ExtensionAbsent  ExtensionState = "absent"
)

// Extension is one entry of spec.postgres.extensions.
type Extension struct {
	Name string `json:"name"`
	// Version pins the extension version (ALTER EXTENSION ... UPDATE TO);
	// empty: whatever CREATE EXTENSION installs, never updated.
	Version string `json:"version,omitempty"`
	// Schema is where CREATE EXTENSION puts it; empty: the server's choice.
	Schema string         `json:"schema,omitempty"`
	State  ExtensionState `json:"state,omitempty"`
}

// PGValue is a setting's value as written in YAML: a string, a number, or
// a boolean (on/off), all kept as the text ALTER SYSTEM SET is given.
type PGValue string

// UnmarshalJSON accepts a string, a number or a boolean.
func (v *PGValue) UnmarshalJSON(b []byte) error {
	s, err := scalarText(b, "on", "off", "must be a string, a number or a boolean")
	*v = PGValue(s)
	return err
}

var (
	// pgSettingName: lower-case, optionally one "prefix." for an
	// extension's settings (pg_stat_statements.track), as pg_settings names them.
	pgSettingName = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$`)
	extensionName = regexp.MustCompile(`^[a-z_][a-z0-9_-]*$`)
	pgIdent       = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	extVersion    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// notAlterSystem are parameters ALTER SYSTEM refuses (they locate the
// configuration itself) or that hold credentials, which would be shown in plans.
var notAlterSystem = map[string]string{
	"data_directory":         "locates the configuration itself: ALTER SYSTEM cannot set it",
	"config_file":            "locates the configuration itself: ALTER SYSTEM cannot set it",
	"hba_file":               "locates the configuration itself: ALTER SYSTEM cannot set it",
	"ident_file":             "locates the configuration itself: ALTER SYSTEM cannot set it",
	"primary_conninfo":       "holds a connection string with credentials; dbops does not manage secrets (they would appear in plans)",
	"ssl_passphrase_command": "yields a secret; dbops does not manage secrets (they would appear in plans)",
}

// checkPostgresServer validates spec.postgres.extensions, .settings and
// .resetSettings and fills in defaults.
func checkPostgresServer(pg *Postgres, bad func(field, format string, args ...any)) {
	seen := map[string]int{}
	for i := range pg.Extensions {
		e := &pg.Extensions[i]
		field := fmt.Sprintf("spec.postgres.extensions[%d]", i)
		if !extensionName.MatchString(e.Name) {
			bad(field+".name", "%q is not an extension name (lower-case letters, digits, '_' and '-', as in pg_available_extensions)", e.Name)
		}
		if j, ok := seen[e.Name]; ok {
			bad(field+".name", "extension %s is already listed at spec.postgres.extensions[%d]", e.Name, j)
		}
		seen[e.Name] = i
		switch e.State {
		case "":
			e.State = ExtensionPresent
		case ExtensionPresent:
		case ExtensionAbsent:
			if e.Version != "" || e.Schema != "" {
				bad(field+".state", "an absent extension takes no version or schema")
			}
		default:
			bad(field+".state", "%q is not present or absent", e.State)
		}
		if e.Version != "" && !extVersion.MatchString(e.Version) {
			bad(field+".version", "%q is not an extension version (letters, digits, '.', '_' and '-')", e.Version)
		}
		if e.Schema != "" && !pgIdent.MatchString(e.Schema) {
			bad(field+".schema", "%q is not a schema name (lower-case letters, digits and '_')", e.Schema)
		}
	}
	checkName := func(field, name string) bool {
		if !pgSettingName.MatchString(name) {
			bad(field, "%q is not a PostgreSQL parameter name: lower-case letters, digits and '_', optionally prefix.name (write %q)", name, strings.ToLower(name))
			return false
		}
		if why, ok := notAlterSystem[name]; ok {
			bad(field, "%s %s", name, why)
			return false
		}
		return true
	}
	for _, name := range sortedKeys(pg.Settings) {
		field := "spec.postgres.settings." + name
		if !checkName(field, name) {
			continue
		}
		if strings.ContainsRune(string(pg.Settings[name]), 0) {
			bad(field, "holds a NUL byte")
		}
	}
	for i, name := range pg.ResetSettings {
		field := "spec.postgres.resetSettings[" + strconv.Itoa(i) + "]"
		if !checkName(field, name) {
			continue
		}
		if _, ok := pg.Settings[name]; ok {
			bad(field, "%s is also in spec.postgres.settings: a setting is either set or reset", name)
		}
	}
}

// NeedsPreload lists extensions whose library must be in
// shared_preload_libraries before they work (CREATE EXTENSION itself may
// succeed, but their views or workers fail until the server restarts with it).
var NeedsPreload = map[string]string{
	"pg_stat_statements": "pg_stat_statements",
	"pg_cron":            "pg_cron",
	"timescaledb":        "timescaledb",
	"pgaudit":            "pgaudit",
	"citus":              "citus",
	"pg_wait_sampling":   "pg_wait_sampling",
	"pg_qualstats":       "pg_qualstats",
	"pg_stat_kcache":     "pg_stat_kcache",
	"pg_squeeze":         "pg_squeeze",
	"pg_stat_monitor":    "pg_stat_monitor",
	"pglogical":          "pglogical",
}
