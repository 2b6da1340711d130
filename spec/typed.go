package spec

import (
	"encoding/json"
	"errors"
	"strconv"
)

// typedErrors locates the failure of the typed decoding of a document (the
// schema has passed it): the fields with their own decoders are decoded one
// by one, so each error names its stack and field path.
func typedErrors(file, stack string, js []byte) ErrorList {
	var probe struct {
		Spec struct {
			Postgres *struct {
				Migrations *struct {
					Target   json.RawMessage `json:"target"`
					Baseline json.RawMessage `json:"baseline"`
				} `json:"migrations"`
			} `json:"postgres"`
			Redis *struct {
				Config map[string]json.RawMessage `json:"config"`
			} `json:"redis"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(js, &probe); err != nil {
		return nil
	}
	var out ErrorList
	add := func(field string, err error) {
		msg := err.Error()
		if fe := (FieldError{}); errors.As(err, &fe) {
			msg = fe.Msg
		}
		out = append(out, FieldError{File: file, Stack: stack, Field: field, Msg: msg})
	}
	if pg := probe.Spec.Postgres; pg != nil && pg.Migrations != nil {
		if len(pg.Migrations.Target) > 0 {
			var t Target
			if err := t.UnmarshalJSON(pg.Migrations.Target); err != nil {
				add("spec.postgres.migrations.target", err)
			}
		}
		if len(pg.Migrations.Baseline) > 0 && string(pg.Migrations.Baseline) != "null" {
			var r MigrationRef
			if err := r.UnmarshalJSON(pg.Migrations.Baseline); err != nil {
				add("spec.postgres.migrations.baseline", err)
			}
		}
	}
	if r := probe.Spec.Redis; r != nil {
		for _, name := range sortedKeys(r.Config) {
			var v RedisValue
			if err := v.UnmarshalJSON(r.Config[name]); err != nil {
				add("spec.redis.config."+name, err)
			}
		}
	}
	return out
}

// parseVersionLiteral reads a migration version written as a JSON number
// or string, naming the int64 limit when it is exceeded.
func parseVersionLiteral(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, errors.New(s + " is larger than the largest migration version goose can hold (9223372036854775807)")
	}
	if err != nil || n < 0 {
		return 0, errors.New(strconv.Quote(s) + ` is not "latest" or a migration version (a whole number >= 0)`)
	}
	return n, nil
}
