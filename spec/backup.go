package spec

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"time"
	_ "time/tzdata" // every IANA zone, even in slim images

	"github.com/robfig/cron/v3"
)

// Backup is a scheduled backup job of a stack.
type Backup struct {
	Name   string `json:"name"`
	Source string `json:"source"` // postgres or redis
	// Schedule is a standard 5-field cron expression, or @hourly, @daily,
	// @weekly, @monthly, @yearly, @every <duration>.
	Schedule string `json:"schedule"`
	// Timezone is the IANA zone of Schedule and of retention's calendar
	// boundaries; UTC when empty.
	Timezone string `json:"timezone,omitempty"`
	// Destination is an absolute local folder, usually a mounted volume.
	Destination string    `json:"destination"`
	Retention   Retention `json:"retention"`
	// Verify is read (default: the whole file read back) or restore
	// (Postgres: restored into a scratch database and row counts compared).
	Verify string `json:"verify,omitempty"`
	// Suspend stops the job from firing in `dbops run`.
	Suspend bool `json:"suspend,omitempty"`
}

// Retention says which verified backups to keep, with restic's forget
// semantics; a backup is kept when any rule keeps it.
type Retention struct {
	KeepLast    int `json:"keepLast,omitempty"`
	KeepHourly  int `json:"keepHourly,omitempty"`
	KeepDaily   int `json:"keepDaily,omitempty"`
	KeepWeekly  int `json:"keepWeekly,omitempty"`
	KeepMonthly int `json:"keepMonthly,omitempty"`
	KeepYearly  int `json:"keepYearly,omitempty"`
}

var jobName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// checkBackups validates the backup jobs of a stack.
func checkBackups(s *StackSpec, bad func(field, format string, args ...any)) {
	names := map[string]string{}
	for i, b := range s.Backups {
		f := fmt.Sprintf("spec.backups[%d].", i)
		if !jobName.MatchString(b.Name) {
			bad(f+"name", "%q must be lower-case letters, digits and '-'", b.Name)
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
		if _, err := cron.ParseStandard(b.Schedule); err != nil {
			bad(f+"schedule", "%q is not a 5-field cron expression or @daily/@hourly/@every <duration>: %v", b.Schedule, err)
		}
		if b.Timezone != "" {
			if _, err := time.LoadLocation(b.Timezone); err != nil {
				bad(f+"timezone", "%q is not an IANA time zone", b.Timezone)
			}
		}
		if !filepath.IsAbs(b.Destination) {
			bad(f+"destination", "%q must be an absolute folder (a mounted volume), not a path in the repository", b.Destination)
		}
		if b.Retention == (Retention{}) {
			bad(f+"retention", "empty: set at least one of keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly")
		}
		if !slices.Contains([]string{"", "read", "restore"}, b.Verify) {
			bad(f+"verify", "%q is not read or restore", b.Verify)
		}
	}
	if j := s.BackupBeforeMigrate; j != "" && names[j] != "postgres" {
		bad("spec.backupBeforeMigrate", "%q is not a postgres backup job of this stack", j)
	}
}

// checkWindows validates the maintenance windows of a stack.
func checkWindows(s *StackSpec, bad func(field, format string, args ...any)) {
	for i, w := range s.MaintenanceWindows {
		f := fmt.Sprintf("spec.maintenanceWindows[%d].", i)
		if _, err := cron.ParseStandard(w.Start); err != nil {
			bad(f+"start", "%q is not a 5-field cron expression: %v", w.Start, err)
		}
		if d, err := time.ParseDuration(w.Duration); err != nil || d <= 0 {
			bad(f+"duration", "%q is not a positive duration such as 2h or 90m", w.Duration)
		}
		if w.Timezone != "" {
			if _, err := time.LoadLocation(w.Timezone); err != nil {
				bad(f+"timezone", "%q is not an IANA time zone", w.Timezone)
			}
		}
	}
}
