package backup

import (
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/spec"
)

func TestDrillPostgres(t *testing.T) {
	src := testsrv.PostgresDB(t)
	execSQL(t, src, shopSQL)
	id, _ := age.GenerateX25519Identity()
	for _, c := range []struct {
		name      string
		checks    []string
		encrypted bool
		wantErr   string // "" when the drill passes
	}{
		{"counts", nil, false, ""},
		{"checks pass, encrypted", []string{"SELECT count(*) > 0 FROM shop.orders", "SELECT count(*) = 500 FROM public.\"Audit Log\""}, true, ""},
		{"check false", []string{"SELECT count(*) > 0 FROM public.empty_table"}, false, "check 1 failed in the restored backup"},
		{"check error", []string{"SELECT count(*) > 0 FROM nosuch"}, false, `relation "nosuch" does not exist`},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := testCtx(t)
			job := pgJob(t, src, VerifyRead)
			job.Drill = &spec.Drill{Checks: c.checks}
			opts := Options{}
			if c.encrypted {
				job.Recipients = []string{id.Recipient().String()}
				opts.IdentityFile = writeIdentity(t, id)
			}
			m, err := Run(ctx, job, opts)
			if err != nil {
				t.Fatal(err)
			}
			if m.RowCounts == nil {
				t.Fatal("a job with a drill records row counts")
			}
			rep, err := Drill(ctx, job, opts)
			if c.wantErr == "" {
				if err != nil || !rep.OK || rep.Backup != m.File || rep.RecoveryTime <= 0 || !strings.Contains(rep.Detail, "counts match") {
					t.Fatalf("drill: %v %+v", err, rep)
				}
			} else if err == nil || !strings.Contains(err.Error(), c.wantErr) || rep.OK || rep.Error != err.Error() || !strings.Contains(err.Error(), "shop/pg") {
				t.Fatalf("drill: %v %+v, want an error containing %q", err, rep, c.wantErr)
			}
			if n := scalar(t, src, "SELECT count(*) FROM pg_database WHERE datname LIKE 'dbops_verify_%'"); n != "0" {
				t.Errorf("%s scratch databases left", n)
			}
		})
	}
	t.Run("no backup", func(t *testing.T) {
		job := pgJob(t, src, VerifyRead)
		if _, err := Drill(testCtx(t), job, Options{}); err == nil || !strings.Contains(err.Error(), "no counted backup") {
			t.Fatalf("drill without backups: %v", err)
		}
	})
}

func TestDrillRedis(t *testing.T) {
	ctx := testCtx(t)
	srv := testsrv.NewRedis(t, testsrv.RedisOptions{})
	n0, n1 := fillRedis(t, srv.URL())
	job := redisJob(t, srv.URL())
	job.Drill = &spec.Drill{}
	if _, err := Run(ctx, job, Options{}); err != nil {
		t.Fatal(err)
	}
	rep, err := Drill(ctx, job, Options{})
	if err != nil || !rep.OK || !strings.Contains(rep.Detail, "loaded into a throwaway redis-server") {
		t.Fatalf("drill: %v %+v", err, rep)
	}
	t.Logf("%s (%d + %d keys written)", rep.Detail, n0, n1)
}
