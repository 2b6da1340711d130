package testsrv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// errPortInUse reports that a server could not bind its port (someone took
// it between freePort and the server's bind); the caller retries.
var errPortInUse = errors.New("port already in use")

const (
	startAttempts = 5
	readyTimeout  = 30 * time.Second
)

// osUser is the account a server runs as; nil means the current one.
type osUser struct {
	name     string
	uid, gid uint32
}

// postgresUser returns the account initdb and postgres must run as: nil when
// not root, else the "postgres" OS user.
func postgresUser() (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("testsrv: running as root, and PostgreSQL refuses to run as root; need OS user \"postgres\": %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("testsrv: OS user postgres has non-numeric uid/gid %q/%q", u.Uid, u.Gid)
	}
	return &osUser{name: u.Username, uid: uint32(uid), gid: uint32(gid)}, nil
}

// makeDir creates a fresh 0700 temp dir under os.TempDir(), owned by as.
func makeDir(pattern string, as *osUser) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", fmt.Errorf("testsrv: %w", err)
	}
	if err := chownTo(dir, as, 0o700); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

func chownTo(path string, as *osUser, mode os.FileMode) error {
	if as != nil {
		if err := os.Chown(path, int(as.uid), int(as.gid)); err != nil {
			return fmt.Errorf("testsrv: %w", err)
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("testsrv: %w", err)
	}
	return nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testsrv: find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// proc is a child process whose stdout and stderr go to a log file.
type proc struct {
	cmd     *exec.Cmd
	logPath string
	logFrom int64 // size of the log when this process started
	done    chan struct{}
	waitErr error // valid once done is closed
}

func startProc(bin string, args []string, dir, logPath string, as *osUser) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testsrv: %w", err)
	}
	defer f.Close()
	var from int64
	if fi, err := f.Stat(); err == nil {
		from = fi.Size()
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr(as)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testsrv: start %s: %w", bin, err)
	}
	p := &proc{cmd: cmd, logPath: logPath, logFrom: from, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// runProc runs a command to completion.
func runProc(ctx context.Context, bin string, args []string, dir, logPath string, as *osUser) error {
	p, err := startProc(bin, args, dir, logPath, as)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("testsrv: %s: %w%s", bin, ctx.Err(), p.logTail())
	}
	if p.waitErr != nil {
		return fmt.Errorf("testsrv: %s: %w%s", bin, p.waitErr, p.logTail())
	}
	return nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits up to grace for the process to exit, then kills
// it. The signal is repeated every half second: redis ignores a SIGTERM that
// arrives while it writes its first AOF file, and never retries by itself.
func (p *proc) stop(sig os.Signal, grace time.Duration) error {
	deadline := time.After(grace)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		if p.exited() {
			return nil
		}
		if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("testsrv: signal %s: %w", p.cmd.Path, err)
		}
		select {
		case <-p.done:
			return nil
		case <-tick.C:
			continue
		case <-deadline:
		}
		break
	}
	p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("testsrv: %s did not exit within %v of %v; killed", p.cmd.Path, grace, sig)
}

// log returns what the process wrote to its log.
func (p *proc) log() string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	from := p.logFrom
	if fi, err := f.Stat(); err == nil && fi.Size()-from > 64<<10 {
		from = fi.Size() - 64<<10
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// logTail returns the last lines of the log, formatted for an error message.
func (p *proc) logTail() string {
	lines := strings.Split(strings.TrimRight(p.log(), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return " (" + filepath.Base(p.logPath) + " is empty)"
	}
	return "\n--- last lines of " + filepath.Base(p.logPath) + " ---\n" + strings.Join(lines, "\n")
}

// waitReady calls probe until it succeeds, the process exits, ctx ends or
// readyTimeout passes.
func waitReady(ctx context.Context, p *proc, probe func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	return poll(ctx, p, probe, 2*time.Second, 50*time.Millisecond)
}

// poll calls probe, each call bounded by probeTimeout and every interval,
// until it succeeds, the process exits or ctx ends.
func poll(ctx context.Context, p *proc, probe func(context.Context) error, probeTimeout, interval time.Duration) error {
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("exited early (%v)", p.waitErr)
		}
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		last = probe(pctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last error: %v)", ctx.Err(), last)
		case <-p.done:
		case <-time.After(interval):
		}
	}
}

// startError turns a failed start into an error; errPortInUse when the log
// says the port was taken: PostgreSQL and Redis write "Address already in
// use" (strerror), weed "bind: address already in use" (Go's net).
func startError(name string, port int, p *proc, err error) error {
	if strings.Contains(strings.ToLower(p.log()), "address already in use") {
		return fmt.Errorf("testsrv: %s on port %d: %w", name, port, errPortInUse)
	}
	return fmt.Errorf("testsrv: %s on port %d: %w%s", name, port, err, p.logTail())
}
