package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/amanat/dbops/reconcile/backup"
	"github.com/amanat/dbops/spec"
)

// BackupStatus is a backup job as plan sees it.
type BackupStatus struct {
	Job         string    `json:"job"`
	Source      string    `json:"source"`
	LastBackup  time.Time `json:"lastBackup,omitzero"` // newest verified backup
	LastSize    int64     `json:"lastSize,omitempty"`
	Due         bool      `json:"due"`
	Next        time.Time `json:"next"`
	Uncounted   int       `json:"uncounted,omitempty"` // kept for inspection, never counted
	Error       string    `json:"error,omitempty"`
	Suspended   bool      `json:"suspended,omitempty"`
	Destination string    `json:"destination"`
}

// planBackups lists due backups and the files retention would delete.
func planBackups(ctx context.Context, st *spec.Stack, now time.Time) ([]BackupStatus, []Change) {
	var statuses []BackupStatus
	var changes []Change
	for _, b := range st.Spec.Backups {
		job := backup.NewJob(st, b)
		bs := BackupStatus{Job: b.Name, Source: b.Source, Suspended: b.Suspend, Destination: b.Destination}
		obs, err := backup.Observe(ctx, job, now)
		if err != nil {
			bs.Error = err.Error()
			statuses = append(statuses, bs)
			continue
		}
		bs.Due, bs.Next, bs.Uncounted = obs.Due, obs.Next, len(obs.Uncounted)
		last := "none"
		if obs.Last != nil {
			bs.LastBackup, bs.LastSize = obs.Last.Time(), obs.Last.Manifest.Size
			last = fmt.Sprintf("%s (%s ago)", obs.Last.Time().Format(time.RFC3339), now.Sub(obs.Last.Time()).Round(time.Minute))
		}
		if obs.Due {
			changes = append(changes, Change{Stack: st.Metadata.Name, Kind: ResourceBackup, Resource: ResourceBackup.Address(b.Name),
				Name: b.Name, Action: ActionBackup, Before: "last " + last, After: "new " + b.Source + " backup in " + b.Destination})
		}
		for _, d := range obs.Delete {
			changes = append(changes, Change{Stack: st.Metadata.Name, Kind: ResourcePrune, Resource: ResourcePrune.Address(b.Name + "." + d.ID),
				Name: d.File, Action: ActionDelete, Before: "backup of " + d.Time().Format(time.RFC3339), After: "deleted (retention)"})
		}
		statuses = append(statuses, bs)
	}
	return statuses, changes
}

// applyBackups takes the due backups and deletes exactly the planned files
// that retention still deletes.
func applyBackups(ctx context.Context, st *spec.Stack, changes []Change, o Options) []ChangeResult {
	var out []ChangeResult
	for _, ch := range changes {
		if ch.Kind != ResourceBackup {
			continue
		}
		if ctx.Err() != nil {
			out = append(out, ChangeResult{Change: ch, Status: StatusSkipped, Error: NotStarted})
			continue
		}
		o.progress().Started(ch)
		res := ChangeResult{Change: ch, Status: StatusDone}
		if err := runBackup(ctx, st, ch, o); err != nil {
			res.Status, res.Error = StatusFailed, err.Error()
		}
		o.progress().Finished(res)
		out = append(out, res)
	}
	planned := map[string]Change{}
	for _, ch := range changes {
		if ch.Kind == ResourcePrune {
			planned[ch.Resource] = ch
		}
	}
	if len(planned) == 0 {
		return out
	}
	for _, b := range st.Spec.Backups {
		prefix := ResourcePrune.Address(b.Name + ".")
		obs, err := backup.Observe(ctx, backup.NewJob(st, b), time.Now())
		for _, d := range obs.Delete {
			ch, ok := planned[prefix+d.ID]
			if !ok {
				continue // not in the plan that was shown: left for the next apply
			}
			delete(planned, prefix+d.ID)
			res := ChangeResult{Change: ch, Status: StatusDone}
			if err := backup.Delete(d); err != nil {
				res.Status, res.Error = StatusFailed, err.Error()
			}
			out = append(out, res)
		}
		for key, ch := range planned {
			if err != nil && strings.HasPrefix(key, prefix) {
				out = append(out, ChangeResult{Change: ch, Status: StatusFailed, Error: err.Error()})
				delete(planned, key)
			}
		}
	}
	for _, ch := range planned { // retention no longer deletes it
		out = append(out, ChangeResult{Change: ch, Status: StatusSkipped, Error: "retention keeps it now"})
	}
	return out
}

// runBackup takes and verifies one backup of the stack's job.
func runBackup(ctx context.Context, st *spec.Stack, ch Change, o Options) error {
	name := ch.Name
	for _, b := range st.Spec.Backups {
		if b.Name == name {
			bo := o.Backup
			if o.Progress != nil {
				bo.Written = func(n int64) { o.Progress.Written(ch, n) }
			}
			if bo.ConnectTimeout == 0 {
				bo.ConnectTimeout = o.timeout()
			}
			_, err := backup.Run(ctx, backup.NewJob(st, b), bo)
			var verr *backup.VerifyError
			if errors.As(err, &verr) {
				return verr
			}
			return err
		}
	}
	return fmt.Errorf("backup job %q is not in stack %s", name, st.Metadata.Name)
}

// pgDumpWarnings warns at plan time that a due Postgres backup will fail
// because pg_dump is older than the server (pg_dump refuses a newer
// server), rather than letting the backup find out.
func pgDumpWarnings(ctx context.Context, sp StackPlan, o Options) []string {
	if sp.Postgres == nil || sp.Postgres.ServerVersionNum == 0 {
		return nil
	}
	var out []string
	for _, b := range sp.Backups {
		if !b.Due || b.Source != backup.SourcePostgres {
			continue
		}
		if err := backup.CheckPgDump(ctx, o.Backup, sp.Postgres.ServerVersionNum, sp.Postgres.Server); err != nil {
			out = append(out, fmt.Sprintf("backup %s is due but will fail: %v", b.Job, err))
		}
	}
	return out
}
