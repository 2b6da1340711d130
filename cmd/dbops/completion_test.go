package main_test

import (
	"strings"
	"testing"

	"github.com/amanat/dbops/internal/clitest"
)

// Shell completion offers the spec's stack names, STACK/JOB and the
// --format values (through cobra's __complete, what the scripts call).
func TestCompletion(t *testing.T) {
	f := clitest.NewFixture(t, map[string]string{"00001_a.sql": clitest.Mig("SELECT 1;", "SELECT 1;")})
	f.Write(t, "stacks/stack.yaml", strings.Replace(offlineStack, "./migrations", "../migrations", 1)+
		"  backups:\n    - {name: pg, source: postgres, schedule: \"@daily\", destination: "+t.TempDir()+", retention: {keepLast: 1}}\n")
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"backup", "run", "-f", "stacks", ""}, []string{"shop/pg"}},
		{[]string{"restore", "-f", "stacks", "sh"}, []string{"shop/pg"}},
		{[]string{"drift", "-f", "stacks", ""}, []string{"shop"}},
		{[]string{"plan", "--format", ""}, []string{"text", "json", "markdown"}},
		{[]string{"backup", "list", "--format", ""}, []string{"text", "json"}},
		{[]string{"ba"}, []string{"backup"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			res := f.Run(t, append([]string{"__complete"}, tc.args...)...)
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
				if !strings.HasPrefix(line, ":") { // the last line is the directive
					got = append(got, strings.SplitN(line, "\t", 2)[0])
				}
			}
			if res.Code != 0 || strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("exit %d, completions %q, want %q\n%s", res.Code, got, tc.want, res.Stderr)
			}
		})
	}
}
