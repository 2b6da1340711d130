//go:build cgo

package risk

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// parse is pg_query.Parse, pruned, through the cache (see cache.go): a
// cached tree is decoded in Go, without the C parser. Errors are not
// cached.
func parse(sql string) (*pg_query.ParseResult, error) {
	key := cacheKey(sql)
	if b, ok := cacheGet(key); ok {
		tree := &pg_query.ParseResult{}
		if proto.Unmarshal(b, tree) == nil {
			return tree, nil
		}
	}
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return nil, err
	}
	tree = prune(tree)
	if b, err := proto.Marshal(tree); err == nil {
		cachePut(key, b)
	}
	return tree, nil
}

// prune keeps of a tree what the analyser's stmt reads, so that a cached
// tree decodes in a fraction of the time and memory: statements stmt has no
// case for are dropped, and CREATE TABLE, CREATE TABLE AS, SELECT INTO and
// CREATE INDEX keep only the names and flags stmt looks at (their column
// lists and expressions were most of a typical migration's tree). The
// other statements stmt reads are kept whole. TestPruneKeepsAnalysis
// compares the analysis of pruned and whole trees over the tests' corpus.
func prune(tree *pg_query.ParseResult) *pg_query.ParseResult {
	out := &pg_query.ParseResult{Version: tree.GetVersion()}
	for _, raw := range tree.GetStmts() {
		n := raw.GetStmt()
		switch s := n.GetNode().(type) {
		case *pg_query.Node_CreateStmt:
			n = &pg_query.Node{Node: &pg_query.Node_CreateStmt{CreateStmt: &pg_query.CreateStmt{
				Relation: s.CreateStmt.GetRelation(), IfNotExists: s.CreateStmt.GetIfNotExists()}}}
		case *pg_query.Node_CreateTableAsStmt:
			n = &pg_query.Node{Node: &pg_query.Node_CreateTableAsStmt{CreateTableAsStmt: &pg_query.CreateTableAsStmt{
				Into: &pg_query.IntoClause{Rel: s.CreateTableAsStmt.GetInto().GetRel()}, IfNotExists: s.CreateTableAsStmt.GetIfNotExists()}}}
		case *pg_query.Node_SelectStmt:
			into := s.SelectStmt.GetIntoClause()
			if into == nil {
				continue
			}
			n = &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: &pg_query.SelectStmt{
				IntoClause: &pg_query.IntoClause{Rel: into.GetRel()}}}}
		case *pg_query.Node_IndexStmt:
			n = &pg_query.Node{Node: &pg_query.Node_IndexStmt{IndexStmt: &pg_query.IndexStmt{
				Relation: s.IndexStmt.GetRelation(), Idxname: s.IndexStmt.GetIdxname(), Concurrent: s.IndexStmt.GetConcurrent()}}}
		case *pg_query.Node_CreateSchemaStmt, *pg_query.Node_DropStmt, *pg_query.Node_TruncateStmt,
			*pg_query.Node_AlterTableStmt, *pg_query.Node_RenameStmt, *pg_query.Node_AlterObjectSchemaStmt,
			*pg_query.Node_DoStmt:
		default:
			continue
		}
		out.Stmts = append(out.Stmts, &pg_query.RawStmt{Stmt: n})
	}
	return out
}
