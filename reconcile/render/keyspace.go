package render

import (
	"fmt"
	"io"
	"time"

	"github.com/amanat/dbops/reconcile"
)

// writeKeyspaceJobs prints the stack's keyspace jobs: pending ones as
// changes with their count, done and waiting ones as a state line.
func writeKeyspaceJobs(w io.Writer, sp *reconcile.StackPlan, s Style) {
	if sp.Redis == nil {
		return
	}
	for _, j := range sp.Redis.KeyspaceJobs {
		switch j.State {
		case reconcile.JobDone:
			line := fmt.Sprintf("  keyspace job %s: in sync (ran", j.ID)
			if j.RanAt != nil {
				line += " " + j.RanAt.Format(time.RFC3339) + ","
			}
			fmt.Fprintf(w, "%s %d key(s) deleted)\n", line, j.Deleted)
		case reconcile.JobWaiting:
			fmt.Fprintf(w, "  keyspace job %s: %s for migration %s (not applied, not in this plan)\n", j.ID, s.yellow("waits"), j.After)
		}
	}
	for _, c := range sp.Changes {
		if c.Kind == reconcile.ResourceKeyspaceJob {
			fmt.Fprintf(w, "    %s %-6s keyspace job %s: %s → %s%s\n", s.action(c.Action), c.Action, c.Name, c.Before, c.After, s.risk(c))
		}
	}
}
