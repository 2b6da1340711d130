package spec

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMigrationTimeouts(t *testing.T) {
	tests := []struct {
		name      string
		fields    string // under migrations:
		file      string // body of 00002_b.sql
		lock      time.Duration
		statement time.Duration
		fileLock  time.Duration // of 00002_b.sql
		err       string        // substring of the error; "" for valid
	}{
		{name: "defaults", lock: 5 * time.Second, fileLock: 5 * time.Second},
		{name: "stack values", fields: "lockTimeout: 2s\n      statementTimeout: 10m", lock: 2 * time.Second, statement: 10 * time.Minute, fileLock: 2 * time.Second},
		{name: "off", fields: "lockTimeout: \"0\"", fileLock: 0},
		{name: "file annotation", fields: "lockTimeout: 2s",
			file: "-- dbops:lock-timeout 30s\n" + migration, lock: 2 * time.Second, fileLock: 30 * time.Second},
		{name: "not a duration", fields: "lockTimeout: 5 seconds",
			err: "spec.postgres.migrations.lockTimeout: \"5 seconds\" is not a duration"},
		{name: "below a millisecond", fields: "statementTimeout: 1500us",
			err: "spec.postgres.migrations.statementTimeout: \"1500us\" is not a whole number of milliseconds"},
		{name: "bad annotation value", file: "-- dbops:lock-timeout soon\n" + migration,
			err: "spec.postgres.migrations.dir: 00002_b.sql: line 1: dbops:lock-timeout: \"soon\" is not a duration"},
		{name: "unknown annotation", file: migration + "-- dbops:lock-timout 1s\n",
			err: "00002_b.sql: line 5: unknown annotation dbops:lock-timout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.file
			if file == "" {
				file = migration
			}
			root := writeTree(t, map[string]string{
				".git/HEAD":              "ref: refs/heads/main\n",
				"migrations/00001_a.sql": migration,
				"migrations/00002_b.sql": file,
				"stack.yaml": stackDoc("s", "  postgres:\n    url: ${PG_URL}\n    migrations:\n      dir: migrations\n      "+
					tt.fields+"\n"),
			})
			res, err := Load([]string{filepath.Join(root, "stack.yaml")}, Options{Getenv: testEnv})
			if tt.err != "" {
				var list ErrorList
				if !errors.As(err, &list) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m := res.Stacks[0].Spec.Postgres.Migrations
			if m.Lock != tt.lock || m.Statement != tt.statement {
				t.Errorf("lock %v statement %v, want %v %v", m.Lock, m.Statement, tt.lock, tt.statement)
			}
			lock, _, err := m.For([]byte(file))
			if err != nil || lock != tt.fileLock {
				t.Errorf("00002_b.sql: lock %v (err %v), want %v", lock, err, tt.fileLock)
			}
		})
	}
}
