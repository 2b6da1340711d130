package redis

import (
	"reflect"
	"strings"
	"testing"

	"github.com/amanat/dbops/spec"
)

func TestDiff(t *testing.T) {
	live := State{Version: "8.0.6", Values: map[string]string{
		"maxmemory": "268435456", "maxmemory-policy": "noeviction", "appendonly": "no",
		"save": "3600 1 300 100 60 10000", "hz": "10", "notify-keyspace-events": "",
	}}
	tests := []struct {
		name    string
		desired map[string]spec.RedisValue
		state   State // live when zero
		want    []Change
		msg     string // part of the error, when one is wanted
	}{
		{name: "equal as Redis parses them", desired: map[string]spec.RedisValue{
			"maxmemory": "256mb", "maxmemory-policy": "NoEviction", "appendonly": "No",
			"save": "60 10000 3600 1 300 100", "hz": " 10 ",
		}},
		{name: "memory units differ in value", desired: map[string]spec.RedisValue{"maxmemory": "256m"},
			want: []Change{{Param: "maxmemory", Before: "268435456", After: "256m"}}},
		{name: "changes sorted by name, spec text kept", desired: map[string]spec.RedisValue{
			"maxmemory-policy": "allkeys-lru", "appendonly": "yes", "hz": "10",
		}, want: []Change{
			{Param: "appendonly", Before: "no", After: "yes"},
			{Param: "maxmemory-policy", Before: "noeviction", After: "allkeys-lru"},
		}},
		{name: "save disabled", desired: map[string]spec.RedisValue{"save": ""},
			want: []Change{{Param: "save", Before: "3600 1 300 100 60 10000", After: ""}}},
		{name: "unknown parameters compare as text", desired: map[string]spec.RedisValue{"notify-keyspace-events": "Ex"},
			want: []Change{{Param: "notify-keyspace-events", Before: "", After: "Ex"}}},
		{name: "a live value Redis would not print is a change", desired: map[string]spec.RedisValue{"hz": "10"},
			state: State{Values: map[string]string{"hz": "ten"}}, want: []Change{{Param: "hz", Before: "ten", After: "10"}}},
		{name: "a parameter the server does not know", desired: map[string]spec.RedisValue{"maxmemory": "1gb", "no-such": "1"},
			state: State{Version: "7.2.4", Values: map[string]string{"maxmemory": "0"}, Unknown: []string{"no-such", "unmanaged"}},
			msg:   "the server (Redis 7.2.4) does not know parameter no-such: check the name"},
		{name: "an invalid desired value", desired: map[string]spec.RedisValue{"maxmemory": "lots"},
			msg: `maxmemory: "lots" is not a memory size`},
		{name: "nothing managed", desired: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.state
			if st.Values == nil {
				st = live
			}
			got, err := Diff(tt.desired, st)
			if tt.msg != "" {
				if err == nil || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("error %v, want one containing %q", err, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff = %+v, want %+v", got, tt.want)
			}
		})
	}
}
