package testsrv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestMain(m *testing.M) { Main(m) }

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestDBName(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		want string
	}{
		{"TestFoo", 1, "t_testfoo_1"},
		{"TestFoo/sub case#01", 12, "t_testfoo_sub_case_01_12"},
		{"Test__Ünïcode--", 3, "t_test_n_code_3"},
		{strings.Repeat("TestVeryLong", 10), 123, ""},
	} {
		got := dbName(tc.name, tc.n)
		if tc.want != "" && got != tc.want {
			t.Errorf("dbName(%q, %d) = %q, want %q", tc.name, tc.n, got, tc.want)
		}
		if len(got) > 63 || got != strings.ToLower(got) || !strings.HasSuffix(got, "_"+strconv.Itoa(tc.n)) {
			t.Errorf("dbName(%q, %d) = %q: not a valid name", tc.name, tc.n, got)
		}
	}
}

func TestFindBinaries(t *testing.T) {
	Servers(t)
	dir, err := FindPostgresBin()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("postgres bin: %s", dir)
	if _, err := FindRedisServer(); err != nil {
		t.Fatal(err)
	}
}

func TestPostgres(t *testing.T) {
	Servers(t)
	ctx := testCtx(t)
	pg, err := StartPostgres(ctx, PostgresOptions{Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	if pg.Password != "s3cret" || pg.User != "postgres" || pg.Host != "127.0.0.1" || pg.Port == 0 {
		t.Fatalf("unexpected fields: %+v", pg)
	}
	if err := pg.CreateDatabase(ctx, "App-DB"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, pg.URL("App-DB"))
	if err != nil {
		t.Fatal(err)
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
	conn.Close(ctx)

	// Several statements in one Exec, and a role with its own password.
	if err := pg.Exec(ctx, "App-DB", `CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2);
		CREATE ROLE app LOGIN PASSWORD 'apppw'; GRANT SELECT ON t TO app`); err != nil {
		t.Fatal(err)
	}
	conn, err = pgx.Connect(ctx, pg.URLAs("app", "apppw", "App-DB"))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 2 {
		t.Fatalf("count = %d, %v", n, err)
	}
	conn.Close(ctx)

	// The password is required.
	for _, u := range []string{pg.URLAs("postgres", "wrong", "postgres"), pg.URLAs("postgres", "", "postgres")} {
		conn, err := pgx.Connect(ctx, u)
		if err == nil {
			conn.Close(ctx)
			t.Fatalf("connect to %s succeeded", u)
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
			t.Logf("error for %s: %v", u, err)
			if !strings.Contains(err.Error(), "password") {
				t.Fatalf("want a password authentication error, got %v", err)
			}
		}
	}

	// Restart keeps the port, the data and ALTER SYSTEM settings, and puts
	// postmaster-context ones in force.
	port := pg.Port
	if err := pg.Exec(ctx, "postgres", "ALTER SYSTEM SET shared_buffers = '64MB'"); err != nil {
		t.Fatal(err)
	}
	if err := pg.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err = pgx.Connect(ctx, pg.URLAs("app", "apppw", "App-DB"))
	if err != nil {
		t.Fatalf("after Restart: %v", err)
	}
	var buffers string
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 2 || pg.Port != port {
		t.Fatalf("after Restart: count = %d, %v; port %d, was %d", n, err, pg.Port, port)
	}
	if err := conn.QueryRow(ctx, "SHOW shared_buffers").Scan(&buffers); err != nil || buffers != "64MB" {
		t.Fatalf("after Restart: shared_buffers %q, %v; want 64MB", buffers, err)
	}
	conn.Close(ctx)

	dataDir := pg.DataDir
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := pg.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Fatalf("data dir still there: %v", err)
	}
	if c, err := pgx.Connect(ctx, pg.URL("postgres")); err == nil {
		c.Close(ctx)
		t.Fatal("server still answers after Stop")
	}
}

func TestPostgresRandomPassword(t *testing.T) {
	Servers(t)
	ctx := testCtx(t)
	a, err := StartPostgres(ctx, PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	if len(a.Password) < 16 {
		t.Fatalf("weak random password %q", a.Password)
	}
	if err := a.Exec(ctx, "postgres", "SELECT 1"); err != nil {
		t.Fatal(err)
	}
}

func TestSharedPostgres(t *testing.T) {
	u1 := PostgresDB(t)
	u2 := PostgresDB(t)
	if u1 == u2 {
		t.Fatalf("same URL twice: %s", u1)
	}
	ctx := testCtx(t)
	for _, u := range []string{u1, u2} {
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		var db string
		var tables int
		if err := conn.QueryRow(ctx, `SELECT current_database(),
			(SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public')`).Scan(&db, &tables); err != nil {
			t.Fatal(err)
		}
		conn.Close(ctx)
		if !strings.HasPrefix(db, "t_testsharedpostgres_") || tables != 0 {
			t.Fatalf("db %q with %d tables", db, tables)
		}
	}
	if first, second := SharedPostgres(t), SharedPostgres(t); first != second {
		t.Fatal("SharedPostgres returned different clusters")
	}
	t.Run("sub/test", func(t *testing.T) {
		if err := SharedPostgres(t).Exec(ctx, "postgres", "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		_ = PostgresDB(t)
	})
}

func redisGet(t *testing.T, r *Redis, param string) string {
	t.Helper()
	v, err := redisDo(testCtx(t), r.addr(), r.Password, "CONFIG", "GET", param)
	if err != nil {
		t.Fatal(err)
	}
	arr, _ := v.([]any)
	if len(arr) != 2 {
		t.Fatalf("CONFIG GET %s = %#v", param, v)
	}
	return arr[1].(string)
}

func redisCmd(t *testing.T, r *Redis, args ...string) any {
	t.Helper()
	v, err := redisDo(testCtx(t), r.addr(), r.Password, args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return v
}

func TestRedisRestartWithoutConfigFile(t *testing.T) {
	r := NewRedis(t, RedisOptions{Args: []string{"--maxmemory-policy", "allkeys-lru"}})
	if r.ConfFile != "" {
		t.Fatalf("ConfFile = %q", r.ConfFile)
	}
	if got := redisGet(t, r, "maxmemory-policy"); got != "allkeys-lru" {
		t.Fatalf("maxmemory-policy = %q", got)
	}
	redisCmd(t, r, "CONFIG", "SET", "maxmemory", "10485760")
	if got := redisGet(t, r, "maxmemory"); got != "10485760" {
		t.Fatalf("maxmemory = %q", got)
	}
	if _, err := redisDo(testCtx(t), r.addr(), "", "CONFIG", "REWRITE"); err == nil {
		t.Fatal("CONFIG REWRITE worked without a config file")
	}
	port := r.Port
	if err := r.Restart(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if r.Port != port {
		t.Fatalf("port changed %d -> %d", port, r.Port)
	}
	if got := redisGet(t, r, "maxmemory"); got != "0" {
		t.Fatalf("maxmemory after restart = %q, want 0", got)
	}
	if got := redisGet(t, r, "maxmemory-policy"); got != "allkeys-lru" {
		t.Fatalf("maxmemory-policy after restart = %q", got)
	}
	if r.URL() != "redis://127.0.0.1:"+strconv.Itoa(r.Port)+"/0" {
		t.Fatalf("URL = %s", r.URL())
	}
}

func TestRedisRestartWithConfigFile(t *testing.T) {
	r := NewRedis(t, RedisOptions{ConfigFile: true, Password: `p"w d`})
	if r.ConfFile == "" || filepath.Dir(r.ConfFile) != r.Dir {
		t.Fatalf("ConfFile = %q, Dir = %q", r.ConfFile, r.Dir)
	}
	redisCmd(t, r, "CONFIG", "SET", "maxmemory", "10485760")
	redisCmd(t, r, "CONFIG", "SET", "maxmemory-policy", "volatile-lru")
	redisCmd(t, r, "CONFIG", "REWRITE")
	redisCmd(t, r, "CONFIG", "SET", "maxmemory-policy", "allkeys-random") // not rewritten
	if err := r.Restart(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := redisGet(t, r, "maxmemory"); got != "10485760" {
		t.Fatalf("maxmemory after restart = %q", got)
	}
	if got := redisGet(t, r, "maxmemory-policy"); got != "volatile-lru" {
		t.Fatalf("maxmemory-policy after restart = %q", got)
	}
	if got := redisGet(t, r, "requirepass"); got != `p"w d` {
		t.Fatalf("requirepass = %q", got)
	}
}

func TestRedisPassword(t *testing.T) {
	r := NewRedis(t, RedisOptions{Password: "pw"})
	if got := redisCmd(t, r, "PING"); got != "PONG" {
		t.Fatalf("PING = %v", got)
	}
	_, err := redisDo(testCtx(t), r.addr(), "", "PING")
	if err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("PING without AUTH: %v", err)
	}
	if _, err := redisDo(testCtx(t), r.addr(), "bad", "PING"); err == nil {
		t.Fatal("PING with a wrong password worked")
	}
	want := "redis://:pw@127.0.0.1:" + strconv.Itoa(r.Port) + "/0"
	if r.URL() != want {
		t.Fatalf("URL = %s, want %s", r.URL(), want)
	}
	dir := r.Dir
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dir still there: %v", err)
	}
	if err := r.Restart(testCtx(t)); err == nil {
		t.Fatal("Restart after Stop worked")
	}
}

func TestRedisPortTaken(t *testing.T) {
	Servers(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	// The extra --port overrides the free one, so every attempt hits a taken port.
	r, err := StartRedis(testCtx(t), RedisOptions{Args: []string{"--port", port}})
	if err == nil {
		r.Stop()
		t.Fatal("redis started on a taken port")
	}
	if !errors.Is(err, errPortInUse) {
		t.Fatalf("want errPortInUse, got %v", err)
	}
}

// Each server's own wording of a taken port is errPortInUse, so its start
// is tried again on another port.
func TestStartErrorPortInUse(t *testing.T) {
	for _, tc := range []struct {
		log  string
		want bool
	}{
		{"LOG:  could not bind IPv4 address \"127.0.0.1\": Address already in use", true},                                                                   // postgres
		{"# Warning: Could not create server TCP listening socket 127.0.0.1:6379: bind: Address already in use", true},                                      // redis
		{"F1130 15:25:52.217239 s3.go:488 S3 API Server listener on 127.0.0.1:35803 error: listen tcp 127.0.0.1:35803: bind: address already in use", true}, // weed
		{"FATAL:  data directory has wrong ownership", false},
	} {
		logPath := filepath.Join(t.TempDir(), "log")
		if err := os.WriteFile(logPath, []byte(tc.log+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := startError("server", 1, &proc{logPath: logPath}, errors.New("exited early"))
		if got := errors.Is(err, errPortInUse); got != tc.want {
			t.Errorf("log %q: port in use %v, want %v (%v)", tc.log, got, tc.want, err)
		}
	}
}

// TestServersDieWithUs starts servers in a child test binary, kills it with
// SIGKILL and checks that the servers die too.
func TestServersDieWithUs(t *testing.T) {
	if os.Getenv("TESTSRV_HELPER") == "1" {
		ctx := context.Background()
		pg, err := StartPostgres(ctx, PostgresOptions{})
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		r, err := StartRedis(ctx, RedisOptions{})
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		fmt.Println("PIDS", pg.proc.cmd.Process.Pid, r.proc.cmd.Process.Pid, pg.base, r.Dir)
		select {}
	}
	Servers(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestServersDieWithUs$")
	cmd.Env = append(os.Environ(), "TESTSRV_HELPER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	var pgPid, redisPid int
	var pgDir, redisDir string
	if _, serr := fmt.Sscan(strings.TrimPrefix(line, "PIDS "), &pgPid, &redisPid, &pgDir, &redisDir); err != nil || serr != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q (%v, %v)", line, err, serr)
	}
	defer os.RemoveAll(pgDir)
	defer os.RemoveAll(redisDir)
	if !alive(pgPid) || !alive(redisPid) {
		t.Fatal("servers not running")
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for alive(pgPid) || alive(redisPid) {
		if time.Now().After(deadline) {
			t.Fatalf("servers outlived their parent: postgres %v, redis %v", alive(pgPid), alive(redisPid))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestRedisErrorShowsLog(t *testing.T) {
	Servers(t)
	for _, cf := range []bool{false, true} {
		r, err := StartRedis(testCtx(t), RedisOptions{ConfigFile: cf, Args: []string{"--no-such-directive", "1"}})
		if err == nil {
			r.Stop()
			t.Fatal("redis started with a bad directive")
		}
		if !strings.Contains(err.Error(), "no-such-directive") || !strings.Contains(err.Error(), "last lines of") {
			t.Fatalf("error lacks the log tail: %v", err)
		}
		t.Logf("ConfigFile=%v: %v", cf, err)
	}
}
