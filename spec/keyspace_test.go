package spec

import (
	"path/filepath"
	"testing"
)

// TestKeyspaceAfterResolved: `after` is resolved to the version the plan
// compares with the applied ones (goose version, drizzle when), whatever
// form it is written in.
func TestKeyspaceAfterResolved(t *testing.T) {
	tests := []struct {
		file      string
		job       int
		wantVer   int64
		wantName  string
		wantShare float64
	}{
		{"keyspace-jobs.yaml", 0, 1, "00001_t.sql", DefaultRiskyShare}, // by file name without .sql
		{"keyspace-jobs.yaml", 1, 1, "00001_t.sql", 0.9},               // by version number
		{"keyspace-jobs.yaml", 2, 0, "", DefaultRiskyShare},            // no after
		{"keyspace-jobs-drizzle.yaml", 0, 1700000005000, "0001_orders", DefaultRiskyShare},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			res, err := Load([]string{filepath.Join("testdata", "schema", "valid", tt.file)}, Options{KeepUnsetVars: true, Getenv: env(nil)})
			if err != nil {
				t.Fatal(err)
			}
			j := res.Stacks[0].Spec.Redis.KeyspaceJobs[tt.job]
			if j.AfterVersion != tt.wantVer || j.AfterName != tt.wantName || j.Delete.Share() != tt.wantShare {
				t.Errorf("job %s: after %d %q share %v, want %d %q %v", j.ID, j.AfterVersion, j.AfterName, j.Delete.Share(), tt.wantVer, tt.wantName, tt.wantShare)
			}
		})
	}
}
