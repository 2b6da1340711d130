//go:build !cgo

package risk

import (
	"errors"
	"testing"
)

func TestNoParserWithoutCgo(t *testing.T) {
	if _, err := Migration("SELECT 1", nil, DefaultIndexThreshold); !errors.Is(err, ErrNoParser) {
		t.Errorf("Migration without cgo: %v, want ErrNoParser", err)
	}
	if _, err := TablesIndexed("SELECT 1"); !errors.Is(err, ErrNoParser) {
		t.Errorf("TablesIndexed without cgo: %v, want ErrNoParser", err)
	}
}
