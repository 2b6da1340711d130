package postgres

import "testing"

func TestVersionNum(t *testing.T) {
	cases := []struct {
		in   string
		want int
		ok   bool
	}{
		{"15.14 (Debian 15.14-0+deb12u1)", 150014, true},
		{"18.4", 180004, true},
		{"18beta1", 180000, true},
		{"17rc1", 170000, true},
		{"16devel", 160000, true},
		{"9.6.24", 90624, true},
		{"9.6beta2", 90600, true},
		{"", 0, false},
		{"x15.1", 0, false},
		{"15.1.2", 0, false},
	}
	for _, c := range cases {
		got, ok := VersionNum(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("VersionNum(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
