package testsrv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var drizzleTools struct {
	once sync.Once
	dir  string
	err  string
}

// Drizzle runs the real drizzle tools: drizzle-kit to generate migrations,
// drizzle-orm's node-postgres migrator to apply them.
type Drizzle struct {
	// Project is a folder whose node_modules holds drizzle-kit, drizzle-orm
	// and pg; schema files and scripts are written there.
	Project string
}

// NewDrizzle installs the drizzle tools (scripts/drizzle-tools.sh: pinned
// versions, cached outside the work tree) once per test binary and returns
// a project folder using them. Under -short the test is skipped; a missing
// node or npm fails it when DBOPS_REQUIRE_SERVERS=1 (CI) and skips it
// otherwise.
func NewDrizzle(t testing.TB) *Drizzle {
	t.Helper()
	if testing.Short() {
		t.Skip("testsrv: needs node and the drizzle tools; skipped with -short")
	}
	drizzleTools.once.Do(func() {
		root, err := repoRoot()
		if err != nil {
			drizzleTools.err = err.Error()
			return
		}
		cmd := exec.Command("bash", filepath.Join(root, "scripts", "drizzle-tools.sh"))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			drizzleTools.err = "scripts/drizzle-tools.sh: " + err.Error() + ": " + stderr.String()
			return
		}
		drizzleTools.dir = strings.TrimSpace(string(out))
	})
	if drizzleTools.err != "" {
		if os.Getenv("DBOPS_REQUIRE_SERVERS") == "" {
			t.Skip("drizzle tools unavailable: " + drizzleTools.err)
		}
		t.Fatal("drizzle tools unavailable: " + drizzleTools.err)
	}
	d := &Drizzle{Project: t.TempDir()}
	if err := os.Symlink(filepath.Join(drizzleTools.dir, "node_modules"), filepath.Join(d.Project, "node_modules")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.Project, "migrate.cjs"), []byte(migrateScript), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// repoRoot is the folder holding go.mod, from the test's working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}

// migrateScript applies a migrations folder with drizzle-orm's migrator,
// as an application's own migrate() call does.
const migrateScript = `const { drizzle } = require("drizzle-orm/node-postgres");
const { migrate } = require("drizzle-orm/node-postgres/migrator");
const { Pool } = require("pg");
(async () => {
  const pool = new Pool({ connectionString: process.env.DATABASE_URL });
  const config = { migrationsFolder: process.argv[2] };
  if (process.env.MIGRATIONS_TABLE) config.migrationsTable = process.env.MIGRATIONS_TABLE;
  if (process.env.MIGRATIONS_SCHEMA) config.migrationsSchema = process.env.MIGRATIONS_SCHEMA;
  await migrate(drizzle(pool), config);
  await pool.end();
})().catch((e) => { console.error(e); process.exit(1); });
`

// WriteSchema writes the TypeScript schema drizzle-kit reads.
func (d *Drizzle) WriteSchema(t testing.TB, ts string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(d.Project, "schema.ts"), []byte(ts), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Generate runs `drizzle-kit generate` into out with the migration name
// and file prefix style (index or timestamp).
func (d *Drizzle) Generate(t testing.TB, out, name, prefix string) string {
	t.Helper()
	rel, err := filepath.Rel(d.Project, out) // drizzle-kit 0.31 prefixes --out with "./"
	if err != nil {
		t.Fatal(err)
	}
	return d.run(t, nil, filepath.Join("node_modules", "drizzle-kit", "bin.cjs"), "generate", "--dialect", "postgresql",
		"--schema", "./schema.ts", "--out", rel, "--name", name, "--prefix", prefix)
}

// Migrate runs drizzle-orm's migrator on the database at url; table and
// schema may be empty for drizzle's defaults. It returns node's output.
func (d *Drizzle) Migrate(t testing.TB, url, folder, table, schema string) string {
	t.Helper()
	return d.run(t, []string{"DATABASE_URL=" + url, "MIGRATIONS_TABLE=" + table, "MIGRATIONS_SCHEMA=" + schema}, "migrate.cjs", folder)
}

func (d *Drizzle) run(t testing.TB, env []string, script string, args ...string) string {
	t.Helper()
	cmd := exec.Command("node", append([]string{script}, args...)...)
	cmd.Dir = d.Project
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %s %s: %v\n%s", script, strings.Join(args, " "), err, out)
	}
	return string(out)
}
