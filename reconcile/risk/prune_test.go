//go:build cgo

package risk

import (
	"fmt"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// TestPruneKeepsAnalysis: over the corpus TestInertSoundOnCorpus uses, a
// pruned tree analyses exactly as the whole tree does (findings, tables
// indexed, errors, and what the Sequence knows after it), so the parse
// cache can keep pruned trees only.
func TestPruneKeepsAnalysis(t *testing.T) {
	corpus := sqlCorpus(t)
	smaller := 0
	for name, sql := range corpus {
		whole, err := pg_query.Parse(sql)
		if err != nil {
			continue // parse errors are not cached: the same either way
		}
		pruned := prune(whole)
		if proto.Size(pruned) < proto.Size(whole) {
			smaller++
		}
		for _, cat := range []Catalog{everything{}, legacy{lookup}} {
			if w, p := analyseTree(t, cat, whole), analyseTree(t, cat, pruned); w != p {
				t.Errorf("%s: the pruned tree analyses differently\nwhole:  %s\npruned: %s\n%s", name, w, p, sql)
			}
		}
	}
	if smaller < 100 {
		t.Fatalf("only %d of %d corpus trees pruned smaller: the corpus does not exercise prune", smaller, len(corpus))
	}
	t.Logf("%d of %d corpus trees pruned smaller", smaller, len(corpus))
}

// analyseTree analyses tree after the same earlier migration in a fresh
// Sequence and describes everything the analysis produced.
func analyseTree(t *testing.T, cat Catalog, tree *pg_query.ParseResult) string {
	t.Helper()
	seq := NewSequence(cat, DefaultIndexThreshold)
	if _, err := seq.analyse("CREATE TABLE t (a int); ALTER TABLE users RENAME TO people; DROP TABLE gone; CREATE SCHEMA s;"); err != nil {
		t.Fatalf("earlier migration: %v", err)
	}
	a := &analyser{cat: seq.cat, threshold: seq.threshold, names: seq.names}
	err := a.tree(tree, "")
	// fmt prints maps sorted by key.
	return fmt.Sprintf("findings %v; indexed %v; error %v; tables %v; columns %v; schemas %v",
		a.findings, a.indexed, err, seq.names.tables, seq.names.columns, seq.names.schemas)
}
