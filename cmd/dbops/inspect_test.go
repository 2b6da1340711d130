package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/amanat/dbops/internal/ajvtest"
	"github.com/amanat/dbops/internal/clitest"
	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/schemas"
)

// validateInspect checks `dbops inspect --format json` output against
// schemas/inspect.schema.json with ajv and with the embedded validator.
func validateInspect(t *testing.T, out string) {
	t.Helper()
	if v := ajvtest.Validate(t, "schemas/inspect.schema.json", []json.RawMessage{json.RawMessage(out)})[0]; !v.Valid {
		t.Errorf("ajv: inspect JSON invalid: %v\n%s", v.Errors, out)
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		t.Fatalf("inspect JSON: %v\n%s", err, out)
	}
	sdoc, _ := jsonschema.UnmarshalJSON(bytes.NewReader(schemas.Inspect))
	c := jsonschema.NewCompiler()
	if err := c.AddResource("inspect.schema.json", sdoc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("inspect.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(doc); err != nil {
		t.Errorf("inspect JSON does not match its schema: %v", err)
	}
}

// inspectJSON is the part of the JSON the tests read.
type inspectJSON struct {
	Postgres struct {
		Tables []struct {
			Name     string `json:"name"`
			LiveRows int64  `json:"liveRows"`
		} `json:"tables"`
		TablesTotal int `json:"tablesTotal"`
		Migrations  *struct {
			Level   string `json:"level"`
			Applied int    `json:"applied"`
		} `json:"migrations"`
		StatStatements     bool   `json:"statStatements"`
		StatStatementsNote string `json:"statStatementsNote"`
		Statements         []struct {
			Query string `json:"query"`
			Calls int64  `json:"calls"`
		} `json:"slowestStatements"`
		Connections []struct {
			State string `json:"state"`
			Count int64  `json:"count"`
		} `json:"connections"`
	} `json:"postgres"`
	Redis struct {
		HitRatio *float64 `json:"hitRatio"`
		Slowlog  []struct {
			Args []string `json:"args"`
		} `json:"slowlog"`
		Keyspace []struct {
			DB   int   `json:"db"`
			Keys int64 `json:"keys"`
		} `json:"keyspace"`
		Persistence struct {
			AOFEnabled bool `json:"aofEnabled"`
		} `json:"persistence"`
	} `json:"redis"`
}

// waitLiveRows waits until the statistics show n live rows in table:
// ANALYZE reports them, a poll with a deadline avoids any timing guess.
func waitLiveRows(t *testing.T, url, table string, n int64) {
	t.Helper()
	db := testsrv.OpenDB(t, url)
	if _, err := db.Exec("ANALYZE " + table); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var got int64
		if err := db.QueryRow("SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = $1", table).Scan(&got); err == nil && got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pg_stat_user_tables never showed %d live rows in %s", n, table)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestInspect: text and JSON against a real PostgreSQL (without
// pg_stat_statements: a plain message) and Redis.
func TestInspect(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	r := testsrv.NewRedis(t, testsrv.RedisOptions{Args: []string{"--slowlog-log-slower-than", "0", "--appendonly", "yes"}})
	f := clitest.NewFixture(t, clitest.ThreeMigrations)
	f.Env["PG_URL"], f.Env["REDIS_URL"] = pgURL, r.URL()
	f.Write(t, "stack.yaml", clitest.StackYAML("shop", "  postgres:\n    url: ${PG_URL}\n    migrations: {dir: ./migrations}\n  redis:\n    url: ${REDIS_URL}\n"))
	if res := f.Run(t, "apply", "--auto-approve", "stack.yaml"); res.Code != 0 {
		t.Fatalf("apply: %+v", res)
	}
	if _, err := testsrv.OpenDB(t, pgURL).Exec("INSERT INTO users (email) SELECT 'u' || g FROM generate_series(1, 25) g"); err != nil {
		t.Fatal(err)
	}
	waitLiveRows(t, pgURL, "users", 25)
	c := r.Client(t)
	ctx := context.Background()
	c.Set(ctx, "a", "1", 0)
	c.Set(ctx, "b", "1", 0)
	c.Get(ctx, "a")       // a hit
	c.Get(ctx, "missing") // a miss
	c2 := c.Options()
	c2.DB = 2
	other := goredis.NewClient(c2)
	defer other.Close()
	other.Set(ctx, "x", "1", time.Hour)

	res := f.Run(t, "inspect", "shop", "stack.yaml")
	if res.Code != 0 {
		t.Fatalf("inspect: %+v", res)
	}
	for _, want := range []string{
		"migrations (goose, goose_db_version): level 3, 3 applied",
		"public.users",
		"25 live rows",
		"slowest statements: pg_stat_statements is not installed in this database",
		"keyspace hit ratio: 50.0% (1 hits, 1 misses)",
		"keys in db 0: 2 (0 with a TTL)",
		"keys in db 2: 1 (1 with a TTL)",
		"AOF on",
		"slow log (SLOWLOG GET 10, 10):",
		"memory: used ",
		"connections: ",
	} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("inspect text lacks %q:\n%s", want, res.Stdout)
		}
	}
	res = f.Run(t, "inspect", "shop", "stack.yaml", "--format", "json")
	if res.Code != 0 {
		t.Fatalf("inspect json: %+v", res)
	}
	validateInspect(t, res.Stdout)
	var got inspectJSON
	if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil {
		t.Fatal(err)
	}
	if m := got.Postgres.Migrations; m == nil || m.Level != "3" || m.Applied != 3 {
		t.Errorf("migrations: %+v", m)
	}
	found := false
	for _, tb := range got.Postgres.Tables {
		found = found || (tb.Name == "users" && tb.LiveRows == 25)
	}
	if n := got.Postgres.TablesTotal; n == 0 || n != len(got.Postgres.Tables) {
		t.Errorf("tablesTotal %d, %d tables listed", n, len(got.Postgres.Tables))
	}
	if !found || got.Postgres.StatStatements || len(got.Postgres.Statements) != 0 {
		t.Errorf("postgres: %+v", got.Postgres)
	}
	if h := got.Redis.HitRatio; h == nil || *h != 0.5 || len(got.Redis.Keyspace) != 2 || !got.Redis.Persistence.AOFEnabled || len(got.Redis.Slowlog) != 10 {
		t.Errorf("redis: %+v", got.Redis)
	}

	// a server that cannot be reached: exit 1, the other still shown
	f.Env["REDIS_URL"] = "redis://127.0.0.1:1"
	res = f.Run(t, "inspect", "shop", "stack.yaml", "--connect-timeout", "2s")
	if res.Code != 1 || !strings.Contains(res.Stdout, "25 live rows") || !strings.Contains(res.Stdout, "error: redis 127.0.0.1:1") {
		t.Errorf("inspect with Redis down: %+v", res)
	}
	if res = f.Run(t, "inspect", "nope", "stack.yaml"); res.Code != 1 || !strings.Contains(res.Stderr, `no stack "nope"`) {
		t.Errorf("unknown stack: %+v", res)
	}
}

// TestInspectStatStatements: with pg_stat_statements preloaded and
// installed, the slowest statements are listed, also for a login that
// holds only CONNECT and pg_read_all_stats (read-only credentials).
func TestInspectStatStatements(t *testing.T) {
	pg := testsrv.NewPostgres(t, testsrv.PostgresOptions{Args: []string{"-c", "shared_preload_libraries=pg_stat_statements"}})
	for _, q := range []string{
		"CREATE EXTENSION pg_stat_statements",
		"CREATE TABLE t (id int)",
		"CREATE ROLE viewer LOGIN PASSWORD 'viewer-pass'",
		"GRANT pg_read_all_stats TO viewer",
		"SELECT pg_sleep(0.05)",
	} {
		if err := pg.Exec(context.Background(), "postgres", q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	f := clitest.NewFixture(t, nil)
	f.Env["PG_URL"] = pg.URLAs("viewer", "viewer-pass", "postgres")
	f.Write(t, "stack.yaml", clitest.StackYAML("ro", "  postgres:\n    url: ${PG_URL}\n"))
	res := f.Run(t, "inspect", "ro", "stack.yaml", "--format", "json")
	if res.Code != 0 {
		t.Fatalf("inspect: %+v", res)
	}
	validateInspect(t, res.Stdout)
	var got inspectJSON
	if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil {
		t.Fatal(err)
	}
	sleep := false
	for _, s := range got.Postgres.Statements {
		sleep = sleep || strings.Contains(s.Query, "pg_sleep")
	}
	if !got.Postgres.StatStatements || !sleep {
		t.Errorf("statements: %+v", got.Postgres)
	}
	res = f.Run(t, "inspect", "ro", "stack.yaml")
	if !strings.Contains(res.Stdout, "slowest statements by mean time (pg_stat_statements") || !strings.Contains(res.Stdout, "pg_sleep") {
		t.Errorf("inspect text:\n%s", res.Stdout)
	}
}
