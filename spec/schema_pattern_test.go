package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// Every "pattern" of the shipped schemas compiles (lazyRegexp compiles
// them only when first matched, so a broken one would surface late).
func TestSchemaPatternsCompile(t *testing.T) {
	files, err := filepath.Glob("../schemas/*.schema.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("schemas: %v %v", files, err)
	}
	n := 0
	var walk func(file string, v any)
	walk = func(file string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if p, ok := x.(string); ok && k == "pattern" {
					n++
					if _, err := regexp.Compile(p); err != nil {
						t.Errorf("%s: pattern %q: %v", file, p, err)
					}
				}
				walk(file, x)
			}
		case []any:
			for _, x := range v {
				walk(file, x)
			}
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		walk(f, doc)
	}
	if n < 30 {
		t.Errorf("%d patterns found in %d schemas; the walk misses some", n, len(files))
	}
}
