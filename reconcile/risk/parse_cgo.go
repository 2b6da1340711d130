//go:build cgo

package risk

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// parse is pg_query.Parse through the cache (see cache.go): a cached tree
// is decoded in Go, without the C parser. Errors are not cached.
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
	if b, err := proto.Marshal(tree); err == nil {
		cachePut(key, b)
	}
	return tree, nil
}
