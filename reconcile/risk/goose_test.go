package risk

import (
	"strings"
	"testing"
)

func TestSplitGoose(t *testing.T) {
	const file = `-- 00012_orders.sql: a leading comment
-- +goose Up
-- +goose NO TRANSACTION
CREATE INDEX CONCURRENTLY i ON orders (a);
-- +goose StatementBegin
CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;
-- +goose StatementEnd

--  +goose   down
DROP INDEX i;
DROP FUNCTION f();
`
	tests := []struct {
		name    string
		file    string
		down    bool
		want    string // exact result
		wantErr string
	}{
		{name: "up", file: file, want: "\n\n\nCREATE INDEX CONCURRENTLY i ON orders (a);\n\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n\n\n\n\n\n"},
		{name: "down", file: file, down: true, want: "\n\n\n\n\n\n\n\n\nDROP INDEX i;\nDROP FUNCTION f();\n"},
		{name: "no down section", file: "-- +goose Up\nSELECT 1;\n", down: true, want: "\n\n"},
		{name: "up without down", file: "-- +goose Up\nSELECT 1;\n", want: "\nSELECT 1;\n"},
		{name: "empty down", file: "-- +goose Up\nSELECT 1;\n-- +goose Down\n", down: true, want: "\n\n\n"},
		{name: "crlf", file: "-- +goose Up\r\nSELECT 1;\r\n-- +goose Down\r\nSELECT 2;\r\n", want: "\nSELECT 1;\r\n\n\n"},
		{name: "missing up", file: "SELECT 1;\n", wantErr: "line 1: SQL before the '-- +goose Up' annotation"},
		{name: "empty file", file: "", wantErr: "no '-- +goose Up' annotation"},
		{name: "only comments", file: "-- nothing\n", down: true, wantErr: "no '-- +goose Up' annotation"},
		{name: "down before up", file: "-- +goose Down\nSELECT 1;\n-- +goose Up\n", wantErr: "line 1: '-- +goose Down' before"},
		{name: "duplicate up", file: "-- +goose Up\n-- +goose Up\n", wantErr: "line 2: duplicate '-- +goose Up'"},
		{name: "duplicate down", file: "-- +goose Up\n-- +goose Down\n-- +goose Down\n", down: true, wantErr: "line 3: duplicate '-- +goose Down'"},
		{name: "unknown annotation", file: "-- +goose Up\n-- +goose Sideways\n", wantErr: "line 2: unknown goose annotation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SplitGoose([]byte(tt.file), tt.down)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("SplitGoose = %q, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("SplitGoose =\n%q\nwant\n%q", got, tt.want)
			}
			if n, m := strings.Count(got, "\n"), strings.Count(tt.file, "\n"); n != m {
				t.Errorf("%d lines, the file has %d", n, m)
			}
		})
	}
}

func TestDown(t *testing.T) {
	f := Down("00012_orders.sql")
	if f.Rule != RuleDownMigration || !strings.Contains(f.Reason, "00012_orders.sql") {
		t.Errorf("Down = %q", f)
	}
}

func TestQuoteIdent(t *testing.T) {
	for in, want := range map[string]string{
		"orders": "orders", "order_items2": "order_items2", "Orders": `"Orders"`, "order items": `"order items"`,
		"2fa": `"2fa"`, `a"b`: `"a""b"`, "": `""`, "_x$": "_x$",
	} {
		if got := QuoteIdent(in); got != want {
			t.Errorf("QuoteIdent(%q) = %s, want %s", in, got, want)
		}
	}
	if got := (Table{"public", "Order"}).String(); got != `public."Order"` {
		t.Errorf("Table.String = %s", got)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 10 << 20: "10 MiB", 268435456: "256 MiB", 3 << 30: "3 GiB",
	} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %s, want %s", n, got, want)
		}
	}
}
