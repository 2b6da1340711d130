package main

import (
	"os"
	"path/filepath"

	"github.com/amanat/dbops/reconcile/risk"
)

// useParseCache keeps the parse trees of analysed migration files in
// ${XDG_CACHE_HOME:-~/.cache}/dbops/parse, so that plan and apply parse a
// file only once (see risk.SetCacheDir). dbops run keeps them in memory.
func useParseCache() {
	if d, err := os.UserCacheDir(); err == nil {
		risk.SetCacheDir(filepath.Join(d, "dbops", "parse"))
	}
}
