package inspect

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Redis is the observed state of the stack's Redis server.
type Redis struct {
	Server  string `json:"server"`
	Version string `json:"version,omitempty"`
	Memory  Memory `json:"memory"`
	// EvictedKeys, RejectedConnections, KeyspaceHits/Misses are INFO
	// stats counters since the server started (or CONFIG RESETSTAT).
	EvictedKeys         int64 `json:"evictedKeys"`
	RejectedConnections int64 `json:"rejectedConnections"`
	KeyspaceHits        int64 `json:"keyspaceHits"`
	KeyspaceMisses      int64 `json:"keyspaceMisses"`
	// HitRatio is hits / (hits + misses); absent before any lookup.
	HitRatio *float64    `json:"hitRatio,omitempty"`
	Slowlog  []SlowEntry `json:"slowlog"`
	// SlowlogNote says why the slow log could not be read (an ACL
	// without SLOWLOG GET).
	SlowlogNote string      `json:"slowlogNote,omitempty"`
	Keyspace    []DB        `json:"keyspace"`
	Persistence Persistence `json:"persistence"`
	Error       string      `json:"error,omitempty"`
}

// Memory is INFO memory.
type Memory struct {
	Used          int64   `json:"used"`
	Peak          int64   `json:"peak"`
	MaxMemory     int64   `json:"maxmemory"` // 0: no limit
	Policy        string  `json:"policy,omitempty"`
	Fragmentation float64 `json:"fragmentationRatio"`
}

// SlowEntry is one SLOWLOG GET entry. Arguments are as Redis logged them
// (it truncates long ones); each is cut to 64 bytes here.
type SlowEntry struct {
	ID         int64     `json:"id"`
	Time       time.Time `json:"time"`
	Micros     int64     `json:"micros"`
	Args       []string  `json:"args"`
	Client     string    `json:"client,omitempty"`
	ClientName string    `json:"clientName,omitempty"`
}

// DB is one database of INFO keyspace.
type DB struct {
	DB      int   `json:"db"`
	Keys    int64 `json:"keys"`
	Expires int64 `json:"expires"`
}

// Persistence is INFO persistence.
type Persistence struct {
	RDBLastSave         time.Time `json:"rdbLastSave"`
	RDBChangesSinceSave int64     `json:"rdbChangesSinceSave"`
	RDBLastBgsaveStatus string    `json:"rdbLastBgsaveStatus"`
	AOFEnabled          bool      `json:"aofEnabled"`
	AOFLastWriteStatus  string    `json:"aofLastWriteStatus,omitempty"`
	AOFRewriteStatus    string    `json:"aofLastBgrewriteStatus,omitempty"`
}

// readRedis reads INFO and SLOWLOG GET 10 in one round trip.
func readRedis(ctx context.Context, c *goredis.Client, out *Redis) error {
	var info *goredis.StringCmd
	var slow *goredis.SlowLogCmd
	if _, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		info = p.Info(ctx, "server", "memory", "stats", "persistence", "keyspace")
		slow = p.SlowLogGet(ctx, 10)
		return nil
	}); err != nil && info.Err() != nil {
		return fmt.Errorf("INFO: %w", info.Err())
	}
	kv := map[string]string{}
	out.Keyspace = []DB{}
	sc := bufio.NewScanner(strings.NewReader(info.Val()))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		if n, isDB := strings.CutPrefix(k, "db"); isDB {
			if db, err := strconv.Atoi(n); err == nil {
				out.Keyspace = append(out.Keyspace, parseDB(db, v))
				continue
			}
		}
		kv[k] = v
	}
	i64 := func(k string) int64 { n, _ := strconv.ParseInt(kv[k], 10, 64); return n }
	out.Version = kv["redis_version"]
	out.Memory = Memory{Used: i64("used_memory"), Peak: i64("used_memory_peak"), MaxMemory: i64("maxmemory"), Policy: kv["maxmemory_policy"]}
	out.Memory.Fragmentation, _ = strconv.ParseFloat(kv["mem_fragmentation_ratio"], 64)
	out.EvictedKeys, out.RejectedConnections = i64("evicted_keys"), i64("rejected_connections")
	out.KeyspaceHits, out.KeyspaceMisses = i64("keyspace_hits"), i64("keyspace_misses")
	if t := out.KeyspaceHits + out.KeyspaceMisses; t > 0 {
		r := float64(out.KeyspaceHits) / float64(t)
		out.HitRatio = &r
	}
	out.Persistence = Persistence{
		RDBLastSave:         time.Unix(i64("rdb_last_save_time"), 0).UTC(),
		RDBChangesSinceSave: i64("rdb_changes_since_last_save"),
		RDBLastBgsaveStatus: kv["rdb_last_bgsave_status"],
		AOFEnabled:          kv["aof_enabled"] == "1",
		AOFLastWriteStatus:  kv["aof_last_write_status"],
		AOFRewriteStatus:    kv["aof_last_bgrewrite_status"],
	}
	out.Slowlog = []SlowEntry{}
	if err := slow.Err(); err != nil {
		out.SlowlogNote = "SLOWLOG GET 10 refused: " + err.Error()
		return nil
	}
	for _, e := range slow.Val() {
		args := make([]string, len(e.Args))
		for i, a := range e.Args {
			if len(a) > 64 {
				a = strings.ToValidUTF8(a[:64], "") + "…"
			}
			args[i] = a
		}
		out.Slowlog = append(out.Slowlog, SlowEntry{ID: e.ID, Time: e.Time.UTC(), Micros: e.Duration.Microseconds(),
			Args: args, Client: e.ClientAddr, ClientName: e.ClientName})
	}
	return nil
}

// parseDB reads "keys=1,expires=0,avg_ttl=0".
func parseDB(db int, v string) DB {
	d := DB{DB: db}
	for _, f := range strings.Split(v, ",") {
		k, n, _ := strings.Cut(f, "=")
		x, _ := strconv.ParseInt(n, 10, 64)
		switch k {
		case "keys":
			d.Keys = x
		case "expires":
			d.Expires = x
		}
	}
	return d
}
