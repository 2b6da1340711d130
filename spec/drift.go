package spec

import "time"

// Drift policies: report drift, or also refuse to migrate a drifted database.
const (
	DriftPolicyReport = "report"
	DriftPolicyBlock  = "block"
	// ScratchSameServer builds the expected schema in a dbops_drift_<random>
	// database on the stack's own server.
	ScratchSameServer = "same-server"
	// DefaultDriftInterval is how often dbops run checks drift.
	DefaultDriftInterval = time.Hour
)

// Drift is spec.postgres.drift: where the expected schema is built and what
// drift does to apply.
type Drift struct {
	// Scratch is same-server (default) or a postgres:// URL; ${VAR} expanded.
	Scratch string `json:"scratch,omitempty"`
	// Policy is report (default) or block.
	Policy string `json:"policy,omitempty"`
	// Interval is how often dbops run checks (default 1h).
	Interval Duration `json:"interval,omitzero"`
}

// SameServer says whether the scratch database goes on the stack's server.
func (d *Drift) SameServer() bool { return d.Scratch == "" || d.Scratch == ScratchSameServer }

// Every is the parsed interval, or the default.
func (d *Drift) Every() time.Duration {
	if v := d.Interval.Value(); v > 0 {
		return v
	}
	return DefaultDriftInterval
}

// checkDrift validates and fills in defaults of spec.postgres.drift.
func checkDrift(pg *Postgres, file string, opts Options, bad func(field, format string, args ...any), warn func(field, msg string)) {
	d := pg.Drift
	if d.Scratch == "" {
		d.Scratch = ScratchSameServer
	}
	if d.Scratch != ScratchSameServer {
		d.Scratch = expandURL(d.Scratch, "spec.postgres.drift.scratch", file, opts, bad, warn, checkPostgresURL)
	}
	switch d.Policy {
	case "":
		d.Policy = DriftPolicyReport
	case DriftPolicyReport, DriftPolicyBlock:
	default:
		bad("spec.postgres.drift.policy", "%q is not report or block", d.Policy)
	}
	if t := d.Interval.String(); t != "" {
		v, err := ParseDuration(t)
		if err != nil {
			bad("spec.postgres.drift.interval", "%s", err.Error())
		} else {
			d.Interval = v
		}
	}
}
