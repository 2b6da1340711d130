package postgres

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/amanat/dbops/spec"
)

func TestDiff(t *testing.T) {
	files := map[int64]string{1: "00001_a.sql", 2: "00002_b.sql", 3: "00003_c.sql", 5: "00005_e.sql"}
	latest := spec.Target{}
	pin := func(v int64) spec.Target { return spec.Target{Pinned: true, Version: v} }
	up := func(v int64) Step { return Step{Version: v, File: files[v]} }
	down := func(v int64) Step { return Step{Version: v, File: files[v], Down: true} }
	tests := []struct {
		name      string
		target    spec.Target
		allowDown bool
		available map[int64]string // files when nil
		applied   []int64
		want      Plan
		err       error  // wrapped sentinel
		msg       string // part of the error
	}{
		{name: "empty database to latest", target: latest, want: Plan{From: 0, To: 5, Steps: []Step{up(1), up(2), up(3), up(5)}}},
		{name: "up to date", target: latest, applied: []int64{1, 2, 3, 5}, want: Plan{From: 5, To: 5}},
		{name: "pending above live", target: latest, applied: []int64{1, 2}, want: Plan{From: 2, To: 5, Steps: []Step{up(3), up(5)}}},
		{name: "pinned below latest", target: pin(2), applied: []int64{1}, want: Plan{From: 1, To: 2, Steps: []Step{up(2)}}},
		{name: "pinned at live", target: pin(3), applied: []int64{1, 2, 3}, want: Plan{From: 3, To: 3}},
		{name: "down refused", target: pin(1), applied: []int64{1, 2, 3}, err: ErrDownNotAllowed, msg: "target 1 is below the live version 3; set migrations.allowDown: true"},
		{name: "down, newest first", target: pin(1), allowDown: true, applied: []int64{1, 2, 3}, want: Plan{From: 3, To: 1, Steps: []Step{down(3), down(2)}}},
		{name: "down to zero", target: pin(0), allowDown: true, applied: []int64{1, 2}, want: Plan{From: 2, To: 0, Steps: []Step{down(2), down(1)}}},
		{name: "applied file missing", target: latest, applied: []int64{1, 4}, err: ErrMissingFiles, msg: "version 4 applied in the database but not in migrations"},
		{name: "out of order", target: latest, applied: []int64{1, 3}, err: ErrOutOfOrder, msg: "00002_b.sql (version 2) is not applied but the database is already at version 3"},
		{name: "out of order beyond a pinned target is not run", target: pin(1), applied: []int64{1}, want: Plan{From: 1, To: 1}},
		{name: "no files, nothing applied", target: latest, available: map[int64]string{}, want: Plan{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &spec.Migrations{Dir: "migrations", Target: tt.target, AllowDown: tt.allowDown}
			avail := tt.available
			if avail == nil {
				avail = files
			}
			got, err := Diff(m, avail, State{Applied: tt.applied})
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("error %v, want %v containing %q", err, tt.err, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff = %+v, want %+v", got, tt.want)
			}
		})
	}
}
