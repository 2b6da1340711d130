package backup

import (
	"testing"

	"github.com/amanat/dbops/reconcile/internal/testsrv"
)

// TestPostgresBackupDrizzleLevel: the manifest of a drizzle stack's backup
// records drizzle's level, the last created_at, not goose's.
func TestPostgresBackupDrizzleLevel(t *testing.T) {
	ctx := testCtx(t)
	src := testsrv.PostgresDB(t)
	execSQL(t, src, `CREATE SCHEMA drizzle;
CREATE TABLE drizzle.__drizzle_migrations (id serial PRIMARY KEY, hash text NOT NULL, created_at bigint);
INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES ('a', 1700000000000), ('b', 1700000005000);
CREATE TABLE users (id int);`)
	job := pgJob(t, src, VerifyRead)
	job.MigrationFormat, job.MigrationTable = "drizzle", `"drizzle"."__drizzle_migrations"`
	m, err := Run(ctx, job, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.MigrationVersion == nil || *m.MigrationVersion != 1700000005000 {
		t.Errorf("migration version %v, want drizzle's last created_at 1700000005000", m.MigrationVersion)
	}
}
