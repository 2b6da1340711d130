package loop

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/testsrv"
	"github.com/amanat/dbops/reconcile/source"
)

// TestDrizzleStackReconciled: dbops run applies a drizzle stack's
// migrations, then one added to the journal while it runs, under the
// stack's lock like a goose stack.
func TestDrizzleStackReconciled(t *testing.T) {
	pgURL := testsrv.PostgresDB(t)
	rd := testsrv.NewRedis(t, testsrv.RedisOptions{})
	dir := t.TempDir()
	write := func(name, body string) {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		tmp := filepath.Join(dir, name+".tmp")
		os.WriteFile(tmp, []byte(body), 0o644)
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	entry := func(idx int, when, tag string) string {
		return `{"idx":` + strconv.Itoa(idx) + `,"version":"7","when":` + when + `,"tag":"` + tag + `","breakpoints":true}`
	}
	write("drizzle/0000_a.sql", "CREATE TABLE a (id int);\n--> statement-breakpoint\nCREATE TABLE a2 (id int);")
	write("drizzle/0001_b.sql", "CREATE TABLE b (id int);")
	write("drizzle/meta/_journal.json", `{"version":"7","dialect":"postgresql","entries":[`+entry(0, "1700000000000", "0000_a")+`,`+entry(1, "1700000001000", "0001_b")+`]}`)
	write("stack.yaml", redisStack("shop", rd.URL(), "64mb", "  postgres:\n    url: "+pgURL+"\n    migrations: {dir: ./drizzle}\n"))
	src, err := source.NewDir(source.DirOptions{Dir: dir, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var logs testsrv.Buffer
	l := newLoop(t, src, &logs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	defer func() { cancel(); <-done }()

	db := testsrv.OpenDB(t, pgURL)
	rows := func() int {
		var n int
		db.QueryRow(`SELECT count(*) FROM drizzle.__drizzle_migrations`).Scan(&n)
		return n
	}
	eventually(t, "both migrations recorded", func() bool { return rows() == 2 })
	write("drizzle/0002_c.sql", "CREATE TABLE c (id int);")
	write("drizzle/meta/_journal.json", `{"version":"7","dialect":"postgresql","entries":[`+entry(0, "1700000000000", "0000_a")+`,`+
		entry(1, "1700000001000", "0001_b")+`,`+entry(2, "1700000002000", "0002_c")+`]}`)
	eventually(t, "the new migration applied", func() bool { return rows() == 3 })
	var c bool
	db.QueryRow("SELECT to_regclass('c') IS NOT NULL").Scan(&c)
	if !c {
		t.Error("0002_c recorded but table c missing")
	}
	if strings.Contains(logs.String(), "stack failed") {
		t.Errorf("a stack cycle failed:\n%s", logs.String())
	}
}
