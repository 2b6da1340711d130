package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// JobsKey is the hash recording the keyspace jobs that ran: field = job
// id, value = a JSON Record. It lives in the database of the stack's URL.
const JobsKey = "dbops:keyspace-jobs"

// Own reports whether key is one of dbops' own keys (the record hash, the
// stack and job locks): keyspace jobs never count or delete them, so
// `match: "*"` cannot erase the record that it ran.
func Own(key string) bool {
	return key == JobsKey || strings.HasPrefix(key, "dbops:lock:")
}

// Defaults of a Bound.
const (
	DefaultScanTime  = 2 * time.Second
	DefaultScanCount = 1000
)

// Bound limits the read-only count of a plan: SCAN calls stop after Time
// (DefaultScanTime when zero) or Calls calls (no limit when zero), and
// Count is SCAN's COUNT hint (DefaultScanCount when zero). Tests bound by
// Calls so that a partial count does not depend on the machine's speed.
type Bound struct {
	Time  time.Duration
	Calls int
	Count int64
}

func (b Bound) count() int64 {
	if b.Count <= 0 {
		return DefaultScanCount
	}
	return b.Count
}

// Count is how many keys matched; Complete is false when the bound
// stopped the SCAN early, so Keys is a lower bound.
type Count struct {
	Keys     int64 `json:"keys"`
	Complete bool  `json:"complete"`
}

// CountMatching counts the keys matching pattern with SCAN MATCH (never
// KEYS), within b.
func CountMatching(ctx context.Context, c *goredis.Client, pattern string, b Bound) (Count, error) {
	limit := b.Time
	if limit <= 0 {
		limit = DefaultScanTime
	}
	deadline := time.Now().Add(limit)
	var n int64
	var cursor uint64
	for calls := 1; ; calls++ {
		keys, next, err := c.Scan(ctx, cursor, pattern, b.count()).Result()
		if err != nil {
			return Count{Keys: n}, fmt.Errorf("SCAN MATCH %s: %w", pattern, err)
		}
		for _, k := range keys {
			if !Own(k) {
				n++
			}
		}
		if cursor = next; cursor == 0 {
			return Count{Keys: n, Complete: true}, nil
		}
		if (b.Calls > 0 && calls >= b.Calls) || time.Now().After(deadline) {
			return Count{Keys: n}, nil
		}
	}
}

// sampleKeys is about how many keys Share examines.
const sampleKeys = 1000

// Share estimates the share of the database's keys that match pattern, and
// says how many keys it examined. It runs pairs of SCAN from the same
// cursor, one without MATCH (the keys examined) and one with (those
// matching), so the server applies its own glob rules; Redis advances a
// SCAN cursor by the keys it examines, matched or not, so both see the
// same buckets. Hash order makes the first buckets a sample of the whole.
func Share(ctx context.Context, c *goredis.Client, pattern string) (share float64, examined int64, err error) {
	var matched int64
	var cursor uint64
	for examined < sampleKeys {
		var all, some *goredis.ScanCmd
		if _, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			all = p.Scan(ctx, cursor, "", 100)
			some = p.Scan(ctx, cursor, pattern, 100)
			return nil
		}); err != nil {
			return 0, examined, fmt.Errorf("SCAN (sampling): %w", err)
		}
		keys, next := all.Val()
		for _, k := range keys {
			if !Own(k) {
				examined++
			}
		}
		hits, _ := some.Val()
		for _, k := range hits {
			if !Own(k) {
				matched++
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	if examined == 0 {
		return 0, 0, nil
	}
	return float64(matched) / float64(examined), examined, nil
}

// Record is what JobsKey holds for a job that ran.
type Record struct {
	At      time.Time `json:"at"`
	Deleted int64     `json:"deleted"`
	Match   string    `json:"match"`
	Holder  string    `json:"holder,omitempty"`
}

// Recorded reads the records of ids (HMGET); ids that never ran are absent.
// A value that is not a Record still counts as recorded (the id ran).
func Recorded(ctx context.Context, c *goredis.Client, ids []string) (map[string]Record, error) {
	out := map[string]Record{}
	if len(ids) == 0 {
		return out, nil
	}
	vals, err := c.HMGet(ctx, JobsKey, ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("HMGET %s: %w", JobsKey, err)
	}
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		var r Record
		_ = json.Unmarshal([]byte(s), &r)
		out[ids[i]] = r
	}
	return out, nil
}

// ErrRecorded means another process recorded the job while this one ran.
var ErrRecorded = errors.New("recorded by another process")

// Delete removes the keys matching pattern with SCAN MATCH and UNLINK, a
// batch of about batch keys at a time, so the server is never blocked,
// then records the job under id with HSETNX. It returns how many keys it
// removed. The caller holds the job's lease; should the record exist by
// then (another process ran the job meanwhile), it returns ErrRecorded
// with the keys this run removed.
func Delete(ctx context.Context, c *goredis.Client, id, pattern, holder string, batch int64, now func() time.Time) (int64, error) {
	if batch <= 0 {
		batch = DefaultScanCount
	}
	var deleted int64
	var cursor uint64
	for {
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		keys, next, err := c.Scan(ctx, cursor, pattern, batch).Result()
		if err != nil {
			return deleted, fmt.Errorf("SCAN MATCH %s: %w", pattern, err)
		}
		mine := keys[:0]
		for _, k := range keys {
			if !Own(k) {
				mine = append(mine, k)
			}
		}
		if len(mine) > 0 {
			n, err := c.Unlink(ctx, mine...).Result()
			if err != nil {
				return deleted, fmt.Errorf("UNLINK: %w", err)
			}
			deleted += n
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	rec, _ := json.Marshal(Record{At: now().UTC(), Deleted: deleted, Match: pattern, Holder: holder})
	ok, err := c.HSetNX(ctx, JobsKey, id, rec).Result()
	if err != nil {
		return deleted, fmt.Errorf("keys deleted, but the job could not be recorded in %s (HSETNX): %w", JobsKey, err)
	}
	if !ok {
		return deleted, ErrRecorded
	}
	return deleted, nil
}
