// Package redis observes and applies the CONFIG parameters of a Redis server.
package redis

import (
	"bufio"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/amanat/dbops/spec"
)

func init() {
	// go-redis logs dial failures itself; dbops reports them as errors with
	// the stack and server instead.
	goredis.SetLogger(quiet{})
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// Open returns a client for rawURL with the given dial timeout. Nothing is
// dialled until the first command.
func Open(rawURL string, connectTimeout time.Duration) (*goredis.Client, error) {
	opt, err := spec.ParseRedis(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	if connectTimeout > 0 {
		opt.DialTimeout = connectTimeout
	}
	opt.MaxRetries = -1   // the caller decides when to retry
	opt.DialerRetries = 1 // and connect timeouts mean one attempt
	opt.PoolSize = 2
	return goredis.NewClient(opt), nil
}

// Server names the server of rawURL for messages: host:port, no credentials.
func Server(rawURL string) string {
	return spec.RedisServer(rawURL)
}

// State is what a server answered for the managed parameters.
type State struct {
	// Values maps each parameter the server knows to its CONFIG GET answer.
	Values map[string]string `json:"values"`
	// Unknown lists the parameters the server does not know.
	Unknown []string `json:"unknown,omitempty"`
	// ConfigFile is the server's config file; "" when it runs without one,
	// in which case CONFIG REWRITE is impossible and settings die on restart.
	ConfigFile string `json:"configFile"`
	Version    string `json:"version"`
	// UsedMemory is INFO memory's used_memory, for risk checks.
	UsedMemory uint64 `json:"usedMemory"`
}

// Observe reads INFO server, INFO memory and CONFIG GET for each name in one
// round trip.
func Observe(ctx context.Context, c *goredis.Client, names []string) (State, error) {
	var info, mem *goredis.StringCmd
	gets := make([]*goredis.MapStringStringCmd, len(names))
	_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		info = p.Info(ctx, "server")
		mem = p.Info(ctx, "memory")
		for i, n := range names {
			gets[i] = p.ConfigGet(ctx, n)
		}
		return nil
	})
	if err != nil {
		return State{}, err
	}
	st := State{Values: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(info.Val() + "\n" + mem.Val()))
	for sc.Scan() {
		k, v, _ := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		switch k {
		case "config_file":
			st.ConfigFile = v
		case "redis_version":
			st.Version = v
		case "used_memory":
			st.UsedMemory, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	for i, n := range names {
		vals := gets[i].Val()
		v, ok := vals[n]
		if !ok && len(vals) == 1 { // an alias answers under its canonical name
			for _, x := range vals {
				v, ok = x, true
			}
		}
		if !ok {
			st.Unknown = append(st.Unknown, n)
			continue
		}
		st.Values[n] = v
	}
	return st, nil
}

// Change sets one parameter.
type Change struct {
	Param  string `json:"param"`
	Before string `json:"before"` // the server's answer
	After  string `json:"after"`  // as written in the spec
}

// Diff lists the managed parameters whose live value differs from the
// desired one once both are normalised as Redis parses them, sorted by name.
func Diff(desired map[string]spec.RedisValue, st State) ([]Change, error) {
	var unknown []string
	for _, n := range st.Unknown {
		if _, managed := desired[n]; managed {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("the server (Redis %s) does not know parameter %s: check the name against CONFIG GET *",
			st.Version, strings.Join(unknown, ", "))
	}
	var out []Change
	for name, want := range desired {
		live := st.Values[name]
		w, err := spec.NormalizeRedis(name, string(want))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		l, err := spec.NormalizeRedis(name, live)
		if err != nil || l != w {
			out = append(out, Change{Param: name, Before: live, After: string(want)})
		}
	}
	slices.SortFunc(out, func(a, b Change) int { return strings.Compare(a.Param, b.Param) })
	return out, nil
}

// Apply sets every change in one CONFIG SET, which Redis applies all or
// nothing, then persists them with CONFIG REWRITE when persist is true.
func Apply(ctx context.Context, c *goredis.Client, changes []Change, persist bool) error {
	if len(changes) == 0 {
		return nil
	}
	args := []any{"config", "set"}
	for _, ch := range changes {
		args = append(args, ch.Param, ch.After)
	}
	if err := c.Do(ctx, args...).Err(); err != nil {
		return fmt.Errorf("CONFIG SET: %w", err)
	}
	// Redis clamps some values instead of refusing them: read back, so a
	// value stored differently is a failure, not "done".
	adjusted, err := readBack(ctx, c, changes)
	if err != nil {
		return err
	}
	if persist {
		if err := c.ConfigRewrite(ctx).Err(); err != nil {
			return fmt.Errorf("settings applied but CONFIG REWRITE failed, so they will be lost on restart: %w", err)
		}
	}
	if len(adjusted) > 0 {
		return &AdjustedError{Params: adjusted}
	}
	return nil
}
