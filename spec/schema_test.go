package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/amanat/dbops/internal/ajvtest"
)

// notInSchema lists the corpus documents that break a rule JSON Schema
// cannot express: the schema (and so an editor) accepts them, dbops
// validate refuses them. Every other document gets the same verdict from
// ajv and from Load.
var notInSchema = map[string]string{
	"x-job-name-duplicate.yaml":         "backup job names unique within a stack (uniqueness of one property across array items)",
	"x-backup-before-migrate.yaml":      "backupBeforeMigrate names a postgres backup job of the stack (a cross-reference)",
	"x-migrations-dir-missing.yaml":     "migrations.dir exists (the file system)",
	"x-migrations-dir-outside.yaml":     "migrations.dir resolves inside the repository root (the file system, symlinks)",
	"x-target-not-in-dir.yaml":          "migrations.target is a version present in dir (the file system)",
	"x-cron-range.yaml":                 "cron field values in range (minute 0-59, ...: calendar validity)",
	"x-cron-never-fires.yaml":           "a cron expression fires at all, e.g. not Feb 30 (calendar validity)",
	"x-every-too-short.yaml":            "@every at least 1m (comparing durations)",
	"x-timezone-unknown.yaml":           "timezone is a zone of the IANA database",
	"x-memory-overflow.yaml":            "a memory size fits in 64 bits (numeric range of a string)",
	"x-url-scheme.yaml":                 "URL scheme and host, checked after ${VAR} expansion",
	"x-stack-name-duplicate.yaml":       "stack names unique across documents and files",
	"x-timeout-sub-millisecond.yaml":    "lock/statement timeouts in whole milliseconds, at most 2^31-1 ms (arithmetic on a duration string)",
	"x-same-database.yaml":              "no two stacks migrate the same Postgres database (host:port/db after ${VAR} expansion)",
	"x-same-redis-parameter.yaml":       "no two stacks manage the same parameter of one Redis server (host:port after ${VAR} expansion)",
	"x-target-word.yaml":                "a goose target is a version: the format is detected from dir when not written (the file system)",
	"x-schema-goose-folder.yaml":        "migrations.schema only for drizzle, the format detected from dir (the file system)",
	"x-table-drizzle-folder.yaml":       "drizzle's table is not schema-qualified, the format detected from dir (the file system)",
	"x-format-goose-on-drizzle.yaml":    "migrations.format matches what is in dir (the file system)",
	"x-baseline-not-in-dir.yaml":        "migrations.baseline is a version present in dir (the file system)",
	"x-tag-not-in-journal.yaml":         "a drizzle target or baseline is a tag of dir's meta/_journal.json (the file system)",
	"x-version-overflow.yaml":           "a migration version fits in 64 bits (numeric range of a string)",
	"x-notification-unknown-stack.yaml": "a Notification's stacks name loaded stacks (a cross-reference between documents)",
	"x-notification-url-scheme.yaml":    "a Notification URL is http(s), checked after ${VAR} expansion",
	// keyspace jobs (issue 15 part 3)
	"x-keyspace-job-id-duplicate.yaml":         "keyspace job ids unique within a stack (uniqueness of one property across array items)",
	"x-keyspace-after-no-migrations.yaml":      "a keyspace job's after names a migration: the stack needs spec.postgres.migrations (a cross-reference)",
	"x-keyspace-after-not-in-dir.yaml":         "a keyspace job's after is a migration present in dir (the file system)",
	"x-keyspace-after-tag-not-in-journal.yaml": "a keyspace job's after is a tag of dir's meta/_journal.json (the file system)",
	// spec.postgres extensions/settings (issue 15)
	"x-extension-duplicate.yaml": "extension names unique within a stack (uniqueness of one property across array items)",
	"x-reset-also-set.yaml":      "a parameter is not both in settings and resetSettings (a cross-reference)",
	"x-setting-credential.yaml":  "parameters holding credentials are refused (kept out of the schema so editors still complete them)",
	"x-setting-nul.yaml":         "a setting value holds no NUL byte (kept out of the schema: a NUL in a pattern would garble editors' messages)",
	// durations (window.duration, drift.interval)
	"x-duration-overflow.yaml": "a duration fits in 64-bit nanoseconds, about 2562047h (numeric range of a string)",
}

type corpusDoc struct {
	file  string // relative to testdata/schema
	want  string // for invalid documents: a fragment of Load's error
	docs  []json.RawMessage
	valid bool
}

func readCorpus(t *testing.T) []corpusDoc {
	t.Helper()
	var out []corpusDoc
	for _, dir := range []string{"valid", "invalid"} {
		files, err := filepath.Glob(filepath.Join("testdata", "schema", dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c := corpusDoc{file: filepath.Join(dir, filepath.Base(f)), valid: dir == "valid"}
			if line, _, _ := strings.Cut(string(data), "\n"); strings.HasPrefix(line, "# want: ") {
				c.want = strings.TrimPrefix(line, "# want: ")
			}
			if !c.valid && c.want == "" {
				t.Fatalf("%s: the first line must be \"# want: <part of the error>\"", f)
			}
			docs, err := splitDocuments(data)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			for _, d := range docs {
				js, err := yaml.YAMLToJSONStrict(d.data)
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				c.docs = append(c.docs, js)
			}
			out = append(out, c)
		}
	}
	return out
}

// isNotification tells a Notification document from a Stack one: each kind
// is checked against its own schema.
func isNotification(doc json.RawMessage) bool {
	var head struct {
		Kind string `json:"kind"`
	}
	_ = json.Unmarshal(doc, &head)
	return head.Kind == NotificationKind
}

// TestSchemaAgreesWithLoad runs the corpus under testdata/schema through
// schemas/stack.schema.json (Notification documents through
// schemas/notification.schema.json) with ajv and through Load (what dbops
// validate runs), and requires the same verdict, except for notInSchema.
func TestSchemaAgreesWithLoad(t *testing.T) {
	corpus := readCorpus(t)
	var stacks, notes []json.RawMessage
	for _, c := range corpus {
		for _, d := range c.docs {
			if isNotification(d) {
				notes = append(notes, d)
			} else {
				stacks = append(stacks, d)
			}
		}
	}
	stackVerdicts := ajvtest.Validate(t, "schemas/stack.schema.json", stacks)
	noteVerdicts := ajvtest.Validate(t, "schemas/notification.schema.json", notes)
	if len(notes) < 10 {
		t.Errorf("corpus: %d Notification documents, want at least 10", len(notes))
	}
	invalid, seen := 0, map[string]bool{}
	for _, c := range corpus {
		schemaOK := true
		var why []string
		for _, d := range c.docs {
			var v ajvtest.Verdict
			if isNotification(d) {
				v, noteVerdicts = noteVerdicts[0], noteVerdicts[1:]
			} else {
				v, stackVerdicts = stackVerdicts[0], stackVerdicts[1:]
			}
			schemaOK = schemaOK && v.Valid
			why = append(why, v.Errors...)
		}
		_, loadErr := Load([]string{filepath.Join("testdata", "schema", c.file)}, Options{KeepUnsetVars: true, Getenv: env(nil)})
		rule, exempt := notInSchema[filepath.Base(c.file)]
		seen[filepath.Base(c.file)] = exempt
		switch {
		case c.valid && (loadErr != nil || !schemaOK):
			t.Errorf("%s: valid document refused: load: %v; ajv: %v", c.file, loadErr, why)
		case c.valid:
		case loadErr == nil:
			t.Errorf("%s: Load accepts it, want an error containing %q", c.file, c.want)
		case !strings.Contains(loadErr.Error(), c.want):
			t.Errorf("%s: Load error lacks %q:\n%v", c.file, c.want, loadErr)
		case !strings.Contains(loadErr.Error(), filepath.Base(c.file)+": "):
			t.Errorf("%s: Load error does not name the file:\n%v", c.file, loadErr)
		case exempt && !schemaOK:
			t.Errorf("%s: listed as not expressible (%s), but the schema refuses it: %v; drop it from notInSchema", c.file, rule, why)
		case !exempt && schemaOK:
			t.Errorf("%s: Load refuses it (%q) but the schema accepts it", c.file, c.want)
		default:
			invalid++
		}
	}
	for name := range notInSchema {
		if _, ok := seen[name]; !ok {
			t.Errorf("notInSchema names %s, which is not in the corpus", name)
		}
	}
	if n := len(corpus); n < 30 || invalid < 24 {
		t.Errorf("corpus: %d files, %d invalid with matching verdicts; want at least 24 invalid", n, invalid)
	}
}
