package backup

import (
	"os"
	"path/filepath"
	"slices"
)

// Incomplete lists the job's temporary files in dir: a backup being
// written, or one a killed dbops left behind. They are never counted; the
// job's next run removes them.
func Incomplete(dir string, job Job) []Backup {
	matches, _ := filepath.Glob(filepath.Join(dir, globEscape(hiddenPrefix(job.Stack, job.Name)+tempMarker)+"*"))
	slices.Sort(matches)
	var out []Backup
	for _, m := range matches {
		b := Backup{ID: filepath.Base(m), File: m,
			Reason: "incomplete: a run in progress, or left by a run that was killed; the job's next run removes it"}
		if fi, err := os.Stat(m); err == nil {
			b.Manifest.Size = fi.Size()
			b.Manifest.StartedAt = fi.ModTime()
		}
		out = append(out, b)
	}
	return out
}
