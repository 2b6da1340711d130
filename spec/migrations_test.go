package spec

import (
	"os"
	"strings"
	"testing"
)

// TestGooseParser pins goose's parser reached by go:linkname: a goose
// upgrade that changes it fails here.
func TestGooseParser(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"1.sql": "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\nSELECT 2;\n-- +goose StatementEnd\n-- +goose Down\nSELECT 3;\n",
		"2.sql": "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (c);\n",
	})
	if useTx, err := ParseMigration(dir, "1.sql"); err != nil || !useTx {
		t.Errorf("1.sql: useTx %v err %v", useTx, err)
	}
	if useTx, err := ParseMigration(dir, "2.sql"); err != nil || useTx {
		t.Errorf("2.sql: useTx %v err %v", useTx, err)
	}
	p, err := gooseParseAll(os.DirFS(dir), "1.sql", false)
	if err != nil || len(p.Up) != 1 || len(p.Down) != 1 || !strings.Contains(p.Up[0], "SELECT 2;") {
		t.Errorf("parsed %+v, %v", p, err)
	}
}
