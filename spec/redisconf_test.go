package spec

import "testing"

func TestNormalizeRedis(t *testing.T) {
	tests := []struct {
		name, param, value, want string
		wantErr                  bool
	}{
		{"bytes", "maxmemory", "1024", "1024", false},
		{"k is 1000", "maxmemory", "1k", "1000", false},
		{"kb is 1024", "maxmemory", "1kb", "1024", false},
		{"units ignore case", "maxmemory", "256MB", "268435456", false},
		{"m", "maxmemory", "2m", "2000000", false},
		{"gb", "maxmemory", "1gb", "1073741824", false},
		{"g", "maxmemory", "1G", "1000000000", false},
		{"b unit", "maxmemory", "10b", "10", false},
		{"bad unit", "maxmemory", "256mbb", "", true},
		{"no digits", "maxmemory", "mb", "", true},
		{"negative", "maxmemory", "-1", "", true},
		{"fraction", "maxmemory", "1.5gb", "", true},
		{"overflow", "maxmemory", "99999999999999999999gb", "", true},
		{"yes", "appendonly", "yes", "yes", false},
		{"YES", "appendonly", "YES", "yes", false},
		{"not a bool", "appendonly", "true", "", true},
		{"policy", "maxmemory-policy", "allkeys-lru", "allkeys-lru", false},
		{"policy case", "maxmemory-policy", "AllKeys-LRU", "allkeys-lru", false},
		{"bad policy", "maxmemory-policy", "allkeys-lru2", "", true},
		{"fsync", "appendfsync", "everysec", "everysec", false},
		{"bad fsync", "appendfsync", "sometimes", "", true},
		{"save", "save", "3600 1 300 100 60 10000", "3600 1 300 100 60 10000", false},
		{"save order ignored", "save", "60 10000 3600 1  300 100", "3600 1 300 100 60 10000", false},
		{"save disabled", "save", "", "", false},
		{"save odd", "save", "3600 1 300", "", true},
		{"save words", "save", "hour one", "", true},
		{"int", "hz", "10", "10", false},
		{"bad int", "hz", "ten", "", true},
		{"unknown param kept as text", "notify-keyspace-events", " Ex ", "Ex", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeRedis(tt.param, tt.value)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NormalizeRedis(%q, %q) error = %v, want error %v", tt.param, tt.value, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("NormalizeRedis(%q, %q) = %q, want %q", tt.param, tt.value, got, tt.want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://amanat:s3cret@db:5432/app", "postgres://amanat:xxxxx@db:5432/app"},
		{"redis://:s3cret@redis:6379/0", "redis://:xxxxx@redis:6379/0"},
		{"postgres://db/app?user=a&password=s3cret", "postgres://db/app?password=xxxxx&user=a"},
		{"postgres://amanat:s3cret@db:bad port/app", "(value hidden)"},
		{"redis://redis:6379", "redis://redis:6379"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
