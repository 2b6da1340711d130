//go:build !cgo

package risk

// Migration would analyse migration SQL; without cgo there is no parser, so
// it returns ErrNoParser and the caller treats the migration as risky
// ("cannot analyse"). See the cgo build for the rules.
func Migration(sql string, sizes func(schema, table string) (int64, bool), threshold int64) ([]Finding, error) {
	return nil, ErrNoParser
}

// TablesIndexed returns ErrNoParser without cgo.
func TablesIndexed(sql string) ([]Table, error) {
	return nil, ErrNoParser
}

// Migration returns ErrNoParser without cgo.
func (s *Sequence) Migration(sql string) ([]Finding, error) {
	if Inert(sql) {
		return nil, nil // nothing to parse: see Inert
	}
	return nil, ErrNoParser
}
