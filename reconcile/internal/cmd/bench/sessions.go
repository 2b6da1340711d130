package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/amanat/dbops/internal/testsrv"
)

// sessions samples the server sessions dbops holds, every 10 ms, on every
// PostgreSQL (pg_stat_activity, application_name 'dbops') and Redis
// (connected_clients, less the sampler's own): the server load a design
// costs, next to its speed.
type sessions struct {
	pgs  []*pgx.Conn
	rds  []*goredis.Client
	stop chan struct{}
	wg   sync.WaitGroup

	mu                sync.Mutex
	peakPG, peakRedis int
}

func watchSessions(ctx context.Context, pgs []*testsrv.Postgres, rds []*testsrv.Redis) (*sessions, error) {
	s := &sessions{stop: make(chan struct{})}
	for _, pg := range pgs {
		cfg, err := pgx.ParseConfig(pg.URL("postgres"))
		if err != nil {
			return nil, err
		}
		cfg.RuntimeParams["application_name"] = "dbops-bench"
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return nil, err
		}
		s.pgs = append(s.pgs, c)
	}
	for _, rd := range rds {
		opt, err := goredis.ParseURL(rd.URL())
		if err != nil {
			return nil, err
		}
		opt.PoolSize = 1
		s.rds = append(s.rds, goredis.NewClient(opt))
	}
	return s, nil
}

// now counts the dbops sessions at this moment.
func (s *sessions) now(ctx context.Context) (pg, redis int) {
	for _, c := range s.pgs {
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dbops'").Scan(&n); err == nil {
			pg += n
		}
	}
	for _, c := range s.rds {
		if n, err := c.Do(ctx, "CLIENT", "LIST").Text(); err == nil {
			for i := 0; i < len(n); i++ {
				if n[i] == '\n' {
					redis++
				}
			}
			redis-- // the sampler itself
		}
	}
	return pg, redis
}

// start samples until reset returns the peaks since start.
func (s *sessions) start(ctx context.Context) {
	s.mu.Lock()
	s.peakPG, s.peakRedis = 0, 0
	s.mu.Unlock()
	s.stop = make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			pg, rd := s.now(ctx)
			s.mu.Lock()
			s.peakPG, s.peakRedis = max(s.peakPG, pg), max(s.peakRedis, rd)
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
}

func (s *sessions) peaks() (pg, redis int) {
	close(s.stop)
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peakPG, s.peakRedis
}

func (s *sessions) close() {
	for _, c := range s.pgs {
		c.Close(context.Background())
	}
	for _, c := range s.rds {
		c.Close()
	}
}

// cpuTime is the user+system CPU this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverPIDs are the postmaster pids (from postmaster.pid) and the
// redis-server pids (INFO server process_id) whose CPU the bench counts.
func serverPIDs(ctx context.Context, pgs []*testsrv.Postgres, rds []*testsrv.Redis) ([]int, error) {
	var pids []int
	for _, pg := range pgs {
		b, err := os.ReadFile(filepath.Join(pg.DataDir, "postmaster.pid"))
		if err != nil {
			return nil, err
		}
		pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
		if err != nil {
			return nil, fmt.Errorf("postmaster.pid: %w", err)
		}
		pids = append(pids, pid)
	}
	for _, rd := range rds {
		opt, err := goredis.ParseURL(rd.URL())
		if err != nil {
			return nil, err
		}
		c := goredis.NewClient(opt)
		info, err := c.Info(ctx, "server").Result()
		c.Close()
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
				pid, err := strconv.Atoi(v)
				if err != nil {
					return nil, err
				}
				pids = append(pids, pid)
			}
		}
	}
	return pids, nil
}

// serverCPU is the CPU the servers have used, in clock ticks: each
// process's own and its reaped children's, plus its live children's (the
// PostgreSQL backends).
func serverCPU(pids []int) int64 {
	var total int64
	roots := map[int]bool{}
	for _, pid := range pids {
		roots[pid] = true
		if f := statFields(pid); len(f) > 14 {
			for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
				n, _ := strconv.ParseInt(f[i], 10, 64)
				total += n
			}
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := statFields(pid)
		if len(f) < 13 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); roots[ppid] {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			s, _ := strconv.ParseInt(f[12], 10, 64)
			total += u + s
		}
	}
	return total
}

// statFields are the fields of /proc/pid/stat after the command name
// (field 3, the state, is index 0).
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}
