package lint

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHelpersCallTHelper requires every function that takes a *testing.T,
// *testing.B or testing.TB and is not itself a test, benchmark or fuzz
// target to call Helper on it, so failures point at the caller's line.
// Files in testdata and non-Go files are skipped.
func TestHelpersCallTHelper(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	var missing []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || (strings.HasPrefix(d.Name(), ".") && path != root)) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil || isTestEntry(fn) {
				continue
			}
			name := testingParam(fn)
			if name == "" || callsHelper(fn.Body, name) {
				continue
			}
			rel, _ := filepath.Rel(root, path)
			missing = append(missing, rel+": "+fn.Name.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Errorf("test helpers without %s.Helper():\n%s", "t", strings.Join(missing, "\n"))
	}
}

func isTestEntry(fn *ast.FuncDecl) bool {
	if fn.Recv != nil {
		return false
	}
	for _, p := range []string{"Test", "Benchmark", "Fuzz", "Example"} {
		if strings.HasPrefix(fn.Name.Name, p) {
			return true
		}
	}
	return false
}

// testingParam is the name of fn's *testing.T/B/F or testing.TB parameter.
func testingParam(fn *ast.FuncDecl) string {
	for _, field := range fn.Type.Params.List {
		typ := field.Type
		if star, ok := typ.(*ast.StarExpr); ok {
			typ = star.X
		}
		sel, ok := typ.(*ast.SelectorExpr)
		if !ok {
			continue
		}
		if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "testing" {
			continue
		}
		switch sel.Sel.Name {
		case "T", "B", "F", "TB":
			if len(field.Names) > 0 && field.Names[0].Name != "_" {
				return field.Names[0].Name
			}
		}
	}
	return ""
}

func callsHelper(body *ast.BlockStmt, name string) bool {
	found := false
	ast.Inspect(body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return !found
		}
		if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Helper" {
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == name {
				found = true
			}
		}
		return !found
	})
	return found
}
