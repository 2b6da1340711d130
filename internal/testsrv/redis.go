package testsrv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// RedisOptions configures StartRedis.
type RedisOptions struct {
	Password   string   // requirepass; none when empty
	ConfigFile bool     // start from a config file (so CONFIG REWRITE works); without it redis runs with no config file
	Args       []string // extra "--name value" arguments
}

// Redis is a throwaway redis-server started by StartRedis.
type Redis struct {
	Host     string // 127.0.0.1
	Port     int
	Password string
	Dir      string // working dir (dump.rdb lives here)
	ConfFile string // "" when started without a config file

	bin  string
	args []string // command line (the config file's path when ConfFile is set)

	mu      sync.Mutex
	proc    *proc
	stopped bool
	stopErr error
}

// StartRedis starts a redis-server on a free port of 127.0.0.1 with a fresh
// temp dir, no persistence, and waits until it answers PING.
func StartRedis(ctx context.Context, opts RedisOptions) (*Redis, error) {
	bin, err := FindRedisServer()
	if err != nil {
		return nil, err
	}
	extra, err := parseRedisArgs(opts.Args)
	if err != nil {
		return nil, err
	}
	dir, err := makeDir("testsrv-redis-", nil)
	if err != nil {
		return nil, err
	}
	r := &Redis{Host: "127.0.0.1", Password: opts.Password, Dir: dir, bin: bin}
	if opts.ConfigFile {
		r.ConfFile = filepath.Join(dir, "redis.conf")
	}
	for attempt := 1; ; attempt++ {
		if r.Port, err = freePort(); err != nil {
			r.Stop()
			return nil, err
		}
		if err = r.configure(extra); err == nil {
			err = r.start(ctx)
		}
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, errPortInUse) || attempt == startAttempts {
			r.Stop()
			return nil, err
		}
	}
}

// configure writes the config file, or the command line, for r.Port.
func (r *Redis) configure(extra [][]string) error {
	settings := [][]string{
		{"port", strconv.Itoa(r.Port)},
		{"bind", "127.0.0.1"},
		{"dir", r.Dir},
		{"save", ""},
		{"appendonly", "no"},
		{"daemonize", "no"},
		{"logfile", ""},
	}
	if r.Password != "" {
		settings = append(settings, []string{"requirepass", r.Password})
	}
	settings = append(settings, extra...)
	if r.ConfFile == "" {
		r.args = nil
		for _, s := range settings {
			r.args = append(r.args, "--"+s[0])
			r.args = append(r.args, s[1:]...)
		}
		return nil
	}
	var b strings.Builder
	for _, s := range settings {
		b.WriteString(s[0])
		for _, v := range s[1:] {
			b.WriteString(" " + quoteRedis(v))
		}
		b.WriteString("\n")
	}
	r.args = []string{r.ConfFile}
	if err := os.WriteFile(r.ConfFile, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("testsrv: %w", err)
	}
	return nil
}

// parseRedisArgs splits "--name value..." arguments into directives.
func parseRedisArgs(args []string) ([][]string, error) {
	var out [][]string
	for _, a := range args {
		if name, ok := strings.CutPrefix(a, "--"); ok && name != "" {
			out = append(out, []string{name})
			continue
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("testsrv: RedisOptions.Args must start with a --name, got %q", a)
		}
		out[len(out)-1] = append(out[len(out)-1], a)
	}
	return out, nil
}

// quoteRedis quotes a config file value the way redis's parser reads it.
func quoteRedis(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' || c == '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, "\\x%02x", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func (r *Redis) addr() string { return net.JoinHostPort(r.Host, strconv.Itoa(r.Port)) }

// start runs redis-server with r.args and waits until it answers.
func (r *Redis) start(ctx context.Context) error {
	pr, err := startProc(r.bin, r.args, r.Dir, filepath.Join(r.Dir, "redis.log"), nil)
	if err != nil {
		return err
	}
	r.proc = pr
	pid := strconv.Itoa(pr.cmd.Process.Pid)
	probe := func(ctx context.Context) error {
		v, err := redisDo(ctx, r.addr(), r.Password, "INFO", "server")
		if err != nil {
			return err
		}
		info, _ := v.(string)
		if !strings.Contains(info, "\nprocess_id:"+pid+"\r") {
			return fmt.Errorf("port %d is served by another redis", r.Port)
		}
		return nil
	}
	if err := waitReady(ctx, pr, probe); err != nil {
		pr.stop(syscall.SIGTERM, 10*time.Second)
		return startError("redis-server", r.Port, pr, err)
	}
	return nil
}

// URL returns redis://[:password@]127.0.0.1:port/0
func (r *Redis) URL() string {
	u := url.URL{Scheme: "redis", Host: r.addr(), Path: "/0"}
	if r.Password != "" {
		u.User = url.UserPassword("", r.Password)
	}
	return u.String()
}

// Restart stops the server (SIGTERM, then wait) and starts it again on the
// same port with the same options or config file. Runtime CONFIG SET changes
// not rewritten to the config file are lost, like in a real restart.
func (r *Redis) Restart(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return errors.New("testsrv: Restart of a stopped redis")
	}
	if err := r.proc.stop(syscall.SIGTERM, 30*time.Second); err != nil {
		return err
	}
	return r.start(ctx)
}

// Stop stops the server and removes its dir. It is idempotent.
func (r *Redis) Stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return r.stopErr
	}
	r.stopped = true
	var errs []error
	if r.proc != nil {
		errs = append(errs, r.proc.stop(syscall.SIGTERM, 30*time.Second))
	}
	if err := os.RemoveAll(r.Dir); err != nil {
		errs = append(errs, fmt.Errorf("testsrv: %w", err))
	}
	r.stopErr = errors.Join(errs...)
	return r.stopErr
}

// WaitExit waits up to grace for the server to exit (after a SHUTDOWN
// sent by the test), then stops it with SIGTERM; its files stay, so a
// test can replace them and Start it again, as an operator does.
func (r *Redis) WaitExit(grace time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.proc.done:
		return nil
	case <-time.After(grace):
	}
	return r.proc.stop(syscall.SIGTERM, 30*time.Second)
}

// Start starts a stopped (WaitExit) server again on the same port with
// the same options or config file, plus extra "--name value" arguments
// for this start only (e.g. --appendonly no).
func (r *Redis) Start(ctx context.Context, extra ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return errors.New("testsrv: Start of a removed redis")
	}
	if !r.proc.exited() {
		return errors.New("testsrv: Start of a running redis")
	}
	base := r.args
	r.args = append(append([]string(nil), base...), extra...)
	defer func() { r.args = base }()
	return r.start(ctx)
}
