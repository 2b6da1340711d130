package spec

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Backup is a scheduled backup job of a stack.
type Backup struct {
	Name   string `json:"name"`
	Source string `json:"source"` // postgres or redis
	// Schedule is a standard 5-field cron expression, or @hourly, @daily,
	// @weekly, @monthly, @yearly, @every <duration>, parsed in Timezone.
	Schedule Schedule `json:"schedule"`
	// Timezone is the IANA zone of Schedule and of retention's calendar
	// boundaries; UTC when empty.
	Timezone string `json:"timezone,omitempty"`
	// Destination is an absolute local folder, usually a mounted volume,
	// or s3://bucket/prefix on S3-compatible object storage (see S3).
	Destination string    `json:"destination"`
	S3          *S3       `json:"s3,omitempty"`
	Retention   Retention `json:"retention"`
	// Verify is read (default: the whole file read back) or restore
	// (Postgres: restored into a scratch database and row counts compared).
	Verify string `json:"verify,omitempty"`
	// Encryption, when set, encrypts every backup of the job with age.
	Encryption *Encryption `json:"encryption,omitempty"`
	// Drill, when set, restores the newest counted backup on a schedule
	// and measures the recovery time.
	Drill *Drill `json:"drill,omitempty"`
	// Suspend stops the job from firing in `dbops run`.
	Suspend bool `json:"suspend,omitempty"`
}

// Drill is a scheduled restore drill: the newest counted backup restored
// into a scratch database (Postgres) or a throwaway redis-server (Redis),
// checked, timed and thrown away.
type Drill struct {
	// Schedule is parsed like the job's, in the job's time zone.
	Schedule Schedule `json:"schedule"`
	// Checks are SQL queries returning one boolean, run in the restored
	// scratch database (Postgres only), e.g. SELECT count(*) > 0 FROM users.
	Checks []string `json:"checks,omitempty"`
}

// Retention says which verified backups to keep, with restic's forget
// semantics; a backup is kept when any rule keeps it. For each rule, 0 (or
// leaving it out) disables it and Unlimited keeps one backup in every
// period that has one; at least one rule is set.
type Retention struct {
	KeepLast    int `json:"keepLast,omitempty"`
	KeepHourly  int `json:"keepHourly,omitempty"`
	KeepDaily   int `json:"keepDaily,omitempty"`
	KeepWeekly  int `json:"keepWeekly,omitempty"`
	KeepMonthly int `json:"keepMonthly,omitempty"`
	KeepYearly  int `json:"keepYearly,omitempty"`
}

// Unlimited is the retention count that keeps every period.
const Unlimited = -1

var jobName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// checkBackups parses the backup jobs of a stack.
func checkBackups(s *StackSpec, specFile string, opts Options, bad func(field, format string, args ...any), warn func(field, msg string)) {
	names := map[string]string{}
	for i := range s.Backups {
		b := &s.Backups[i]
		f := fmt.Sprintf("spec.backups[%d].", i)
		if !jobName.MatchString(b.Name) {
			bad(f+"name", "%q must be lower-case letters, digits and '-', at most 63 (it is part of file names)", b.Name)
		} else if _, dup := names[b.Name]; dup {
			bad(f+"name", "duplicate backup job %q", b.Name)
		}
		names[b.Name] = b.Source
		switch b.Source {
		case "postgres":
			if s.Postgres == nil {
				bad(f+"source", "postgres backups need spec.postgres")
			}
		case "redis":
			if s.Redis == nil {
				bad(f+"source", "redis backups need spec.redis")
			}
			if b.Verify == "restore" {
				bad(f+"verify", "restore verification is for postgres backups; use read for redis")
			}
		default:
			bad(f+"source", "%q is not postgres or redis", b.Source)
		}
		tz := b.Timezone
		if _, err := ParseLocation(tz); err != nil {
			bad(f+"timezone", "%v", err)
			tz = "" // still check the schedule
		}
		if sc, err := ParseSchedule(b.Schedule.String(), tz); err != nil {
			bad(f+"schedule", "%v", err)
		} else {
			b.Schedule = sc
		}
		checkStorage(b, f, specFile, opts, bad, warn)
		if d := b.Drill; d != nil {
			if sc, err := ParseSchedule(d.Schedule.String(), tz); err != nil {
				bad(f+"drill.schedule", "%v", err)
			} else {
				d.Schedule = sc
			}
			if b.Source == "redis" && len(d.Checks) > 0 {
				bad(f+"drill.checks", "SQL checks are for postgres drills; a Redis drill compares key counts")
			}
			for k, c := range d.Checks {
				if strings.TrimSpace(c) == "" {
					bad(fmt.Sprintf("%sdrill.checks[%d]", f, k), "empty: a query returning one boolean, e.g. SELECT count(*) > 0 FROM users")
				}
			}
		}
		checkRetention(b.Retention, f+"retention", bad)
		if !slices.Contains([]string{"", "read", "restore"}, b.Verify) {
			bad(f+"verify", "%q is not read or restore", b.Verify)
		}
	}
	if j := s.BackupBeforeMigrate; j != "" && names[j] != "postgres" {
		bad("spec.backupBeforeMigrate", "%q is not a postgres backup job of this stack", j)
	}
}

func checkRetention(r Retention, field string, bad func(field, format string, args ...any)) {
	if r == (Retention{}) {
		bad(field, "empty: set at least one of keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly")
	}
	for _, k := range []struct {
		name string
		n    int
	}{{"keepLast", r.KeepLast}, {"keepHourly", r.KeepHourly}, {"keepDaily", r.KeepDaily},
		{"keepWeekly", r.KeepWeekly}, {"keepMonthly", r.KeepMonthly}, {"keepYearly", r.KeepYearly}} {
		if k.n < Unlimited {
			bad(field+"."+k.name, "%d is negative: use a count, or -1 for unlimited", k.n)
		}
	}
}

// checkWindows parses the maintenance windows of a stack.
func checkWindows(s *StackSpec, bad func(field, format string, args ...any)) {
	for i, w := range s.MaintenanceWindows {
		f := fmt.Sprintf("spec.maintenanceWindows[%d].", i)
		parsed, errs := ParseWindow(w.Start.String(), w.Duration.String(), w.Timezone)
		for _, e := range errs {
			bad(f+e.Field, "%s", e.Msg)
		}
		s.MaintenanceWindows[i] = parsed
	}
}
