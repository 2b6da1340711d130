package postgres

import (
	"strings"
	"testing"

	"github.com/amanat/dbops/spec"
)

func TestEqualAsPostgresParses(t *testing.T) {
	ms := Setting{Name: "statement_timeout", Vartype: "integer", Unit: "ms"}
	blocks := Setting{Name: "shared_buffers", Vartype: "integer", Unit: "8kB"}
	kb := Setting{Name: "work_mem", Vartype: "integer", Unit: "kB"}
	mins := Setting{Name: "autovacuum_naptime", Vartype: "integer", Unit: "s"}
	real := Setting{Name: "vacuum_cost_delay", Vartype: "real", Unit: "ms"}
	boolean := Setting{Name: "jit", Vartype: "bool"}
	enum := Setting{Name: "synchronous_commit", Vartype: "enum", EnumVals: []string{"local", "remote_write", "remote_apply", "on", "off"}}
	list := Setting{Name: "shared_preload_libraries", Vartype: "string"}
	text := Setting{Name: "log_line_prefix", Vartype: "string"}
	cases := []struct {
		s          Setting
		live, want string
		equal      bool
		err        string
	}{
		{ms, "30000", "30s", true, ""},
		{ms, "30000", "0.5min", true, ""},
		{ms, "30000", "29s", false, ""},
		{ms, "300000", "5min", true, ""},
		{ms, "0", "0", true, ""},
		{ms, "3600000", "1h", true, ""},
		{ms, "30000", "30 s", true, ""},
		{ms, "30000", "30S", false, `unit "S" is not one PostgreSQL accepts`},
		{ms, "30000", "30MB", false, `unit "MB" is not one PostgreSQL accepts here (us, ms, s, min, h, d`},
		{blocks, "16384", "128MB", true, ""},
		{blocks, "16384", "131072kB", true, ""},
		{blocks, "16384", "16384", true, ""},
		{blocks, "16384", "1GB", false, ""},
		{kb, "4096", "4MB", true, ""},
		{kb, "4096", "4mb", false, `unit "mb"`},
		{kb, "65536", "0x10000", true, ""},
		{mins, "60", "1min", true, ""},
		{real, "2", "2ms", true, ""},
		{real, "0.5", "500us", true, ""},
		{boolean, "off", "false", true, ""},
		{boolean, "off", "no", true, ""},
		{boolean, "on", "TRUE", true, ""},
		{boolean, "on", "1", true, ""},
		{boolean, "on", "maybe", false, "is not a boolean"},
		{enum, "on", "ON", true, ""},
		{enum, "on", "true", true, ""},
		{enum, "local", "Local", true, ""},
		{enum, "on", "sometimes", false, "not one of the values the server accepts: local, remote_write"},
		{list, "pg_stat_statements, auto_explain", "pg_stat_statements,auto_explain", true, ""},
		{list, `"pg_stat_statements"`, "pg_stat_statements", true, ""},
		{list, "auto_explain, pg_stat_statements", "pg_stat_statements,auto_explain", false, ""},
		{list, "", "", true, ""},
		{text, "%m [%p] ", "%m [%p]", false, ""},
	}
	for _, c := range cases {
		eq, err := Equal(c.s, c.live, c.want)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: live %q want %q: error %v, want %q", c.s.Name, c.live, c.want, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%s: live %q want %q: %v", c.s.Name, c.live, c.want, err)
		case c.err == "" && eq != c.equal:
			t.Errorf("%s: live %q want %q: equal %v, want %v", c.s.Name, c.live, c.want, eq, c.equal)
		}
	}
}

// TestSettingRisks: the risk rules, on plain data (the throwaway servers
// set max_connections and wal_level on their command line, which ALTER
// SYSTEM cannot override).
func TestSettingRisks(t *testing.T) {
	live := Settings{Connections: 40, Values: map[string]Setting{
		"max_connections": {Name: "max_connections", Setting: "100", Vartype: "integer", Context: "postmaster", Source: "configuration file"},
		"wal_level":       {Name: "wal_level", Setting: "replica", Vartype: "enum", Context: "postmaster", EnumVals: []string{"minimal", "replica", "logical"}, Source: "default"},
		"work_mem":        {Name: "work_mem", Setting: "4096", Vartype: "integer", Unit: "kB", Context: "user", Source: "default"},
	}}
	cases := []struct {
		name, value string
		want        []string // fragments of Risk; none: not risky
	}{
		{"max_connections", "30", []string{"max_connections 30 is below the 40 connections open now", "restarts"}},
		{"max_connections", "200", []string{"restarts"}},
		{"wal_level", "logical", []string{"changing wal_level", "restarts"}},
		{"work_mem", "8MB", nil},
	}
	for _, c := range cases {
		p, err := DiffSettings(map[string]spec.PGValue{c.name: spec.PGValue(c.value)}, nil, live)
		if err != nil || len(p.Changes) != 1 {
			t.Fatalf("%s=%s: %v %+v", c.name, c.value, err, p)
		}
		risk := p.Changes[0].Risk
		if (risk == "") != (len(c.want) == 0) {
			t.Errorf("%s=%s: risk %q, want %v", c.name, c.value, risk, c.want)
		}
		for _, w := range c.want {
			if !strings.Contains(risk, w) {
				t.Errorf("%s=%s: risk %q lacks %q", c.name, c.value, risk, w)
			}
		}
	}
}
