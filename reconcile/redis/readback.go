package redis

import (
	"context"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/amanat/dbops/spec"
)

// Adjusted is a parameter Redis accepted but stored with another value
// (hz 1000 is stored as 500).
type Adjusted struct {
	Param     string
	Requested string // as written in the spec
	Stored    string // the server's CONFIG GET answer after the set
}

func (a Adjusted) String() string {
	return fmt.Sprintf("Redis stored %s=%s for the requested %s", a.Param, a.Stored, a.Requested)
}

// AdjustedError reports the parameters a CONFIG SET did not store as asked.
// The others were set.
type AdjustedError struct{ Params []Adjusted }

func (e *AdjustedError) Error() string {
	msgs := make([]string, len(e.Params))
	for i, a := range e.Params {
		msgs[i] = a.String()
	}
	return strings.Join(msgs, "; ") + " (the server adjusts this value; change the spec to a value it keeps)"
}

// readBack reads every changed parameter after CONFIG SET and lists those
// whose stored value differs, once both are normalised.
func readBack(ctx context.Context, c *goredis.Client, changes []Change) ([]Adjusted, error) {
	gets := make([]*goredis.MapStringStringCmd, len(changes))
	_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, ch := range changes {
			gets[i] = p.ConfigGet(ctx, ch.Param)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading back after CONFIG SET: %w", err)
	}
	var out []Adjusted
	for i, ch := range changes {
		vals := gets[i].Val()
		got, ok := vals[ch.Param]
		if !ok && len(vals) == 1 {
			for _, v := range vals {
				got, ok = v, true
			}
		}
		if !ok {
			continue
		}
		want, err1 := spec.NormalizeRedis(ch.Param, ch.After)
		have, err2 := spec.NormalizeRedis(ch.Param, got)
		if err1 != nil || err2 != nil || want != have {
			out = append(out, Adjusted{Param: ch.Param, Requested: ch.After, Stored: got})
		}
	}
	return out, nil
}
