package spec

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// Options control how Load resolves a spec.
type Options struct {
	// Root bounds migration dirs for files outside a git work tree; when
	// empty, the folder of the path each file was found under (the path
	// itself when it is a folder).
	Root string
	// Getenv looks up ${VAR}; os.LookupEnv when nil.
	Getenv func(string) (string, bool)
	// KeepUnsetVars leaves ${VAR} unexpanded when VAR is unset and reports it
	// as a warning instead of an error (for offline validation).
	KeepUnsetVars bool
	// RepoURL is the URL of the repository the files come from (dbops run
	// --repo, or the work tree's origin remote): github and gitlab
	// Notifications without repository/project take theirs from it.
	RepoURL string
}

// Result is a loaded, validated set of stacks.
type Result struct {
	Stacks []Stack
	// Notifications are the Notification documents, checked like stacks.
	Notifications []Notification
	Files         []string     // every YAML file read, in load order
	Warnings      []FieldError // problems that do not stop a plan
}

// Load reads every stack under paths (YAML files, or folders searched for
// *.yaml and *.yml), expands ${VAR} in URLs, resolves relative paths and
// validates the result. All problems are returned together as an ErrorList.
func Load(paths []string, opts Options) (*Result, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.LookupEnv
	}
	files, err := findFiles(paths)
	if err != nil {
		return nil, err
	}
	res := &Result{Files: files}
	var errs ErrorList
	seen := map[string]string{}
	given := opts.Root
	for _, file := range files {
		if given == "" {
			opts.Root = rootOf(file, paths)
		}
		data, err := readSpecFile(file)
		if err != nil {
			errs = append(errs, FieldError{File: file, Msg: err.Error()})
			continue
		}
		docs, err := splitDocuments(data)
		if err != nil {
			errs = append(errs, FieldError{File: file, Msg: err.Error()})
			continue
		}
		for _, doc := range docs {
			if documentKind(doc) == NotificationKind {
				n, ferrs, warns := loadNotification(file, doc, opts)
				errs = append(errs, ferrs...)
				res.Warnings = append(res.Warnings, warns...)
				if n != nil {
					res.Notifications = append(res.Notifications, *n)
				}
				continue
			}
			st, ferrs, warns := loadDocument(file, doc, opts)
			errs = append(errs, ferrs...)
			res.Warnings = append(res.Warnings, warns...)
			if st == nil {
				continue
			}
			if prev, ok := seen[st.Metadata.Name]; ok {
				errs = append(errs, FieldError{File: file, Stack: st.Metadata.Name, Field: "metadata.name",
					Msg: fmt.Sprintf("duplicate stack name, already defined in %s", prev)})
				continue
			}
			seen[st.Metadata.Name] = file
			res.Stacks = append(res.Stacks, *st)
		}
	}
	cerrs, cwarns := checkConflicts(res.Stacks)
	errs = append(errs, cerrs...)
	errs = append(errs, checkNotifications(res.Notifications, res.Stacks)...)
	res.Warnings = append(res.Warnings, cwarns...)
	if len(files) > 0 && len(res.Stacks) == 0 && len(errs) == 0 {
		errs = append(errs, FieldError{File: strings.Join(paths, ", "), Msg: "no Stack documents found"})
	}
	if len(errs) > 0 {
		return res, errs
	}
	return res, nil
}

// rootOf is the default repository root of file outside git: the folder
// of the path it was found under.
func rootOf(file string, paths []string) string {
	for _, p := range paths {
		if file == p {
			return filepath.Dir(p)
		}
		if rel, err := filepath.Rel(p, file); err == nil && !strings.HasPrefix(rel, "..") {
			return p
		}
	}
	return filepath.Dir(file)
}

// findFiles expands folders into the YAML files below them, sorted.
func findFiles(paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, errors.New("no spec path given: name a YAML file or a folder of them")
	}
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("spec path: %w", err)
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != p && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("spec path %s: %w", p, err)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("spec path %s: no *.yaml or *.yml files in this folder", p)
		}
		slices.Sort(found)
		files = append(files, found...)
	}
	return files, nil
}

type document struct {
	line int // first line of the document in its file
	data []byte
}

var docSeparator = regexp.MustCompile(`^---(\s|#|$)`)

// MaxSpecFile caps the size of one spec file: a spec is small, and a
// larger file is a mistake (or an attack) better refused than read.
const MaxSpecFile = 32 << 20

// readSpecFile reads a spec file of at most MaxSpecFile bytes.
func readSpecFile(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSpecFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	if len(data) > MaxSpecFile {
		return nil, fmt.Errorf("larger than %d MiB, the limit for a spec file", MaxSpecFile>>20)
	}
	return data, nil
}

// splitDocuments cuts a YAML stream at its "---" separators, dropping empty
// documents. Separators sit at column 0, so block scalars are never cut.
// Any read error fails the file: a document must never be dropped silently.
func splitDocuments(data []byte) ([]document, error) {
	var docs []document
	cur := document{line: 1}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), MaxSpecFile+1) // any line of a capped file fits
	n := 1
	for ; sc.Scan(); n++ {
		line := sc.Bytes()
		if docSeparator.Match(line) {
			docs = append(docs, cur)
			cur = document{line: n + 1}
			continue
		}
		cur.data = append(append(cur.data, line...), '\n')
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n, err)
	}
	docs = append(docs, cur)
	return slices.DeleteFunc(docs, func(d document) bool { return isBlankYAML(d.data) }), nil
}

func isBlankYAML(b []byte) bool {
	for _, line := range bytes.Split(b, []byte("\n")) {
		t := bytes.TrimSpace(line)
		if len(t) > 0 && t[0] != '#' && !bytes.Equal(t, []byte("...")) {
			return false
		}
	}
	return true
}

// decode reads the document's YAML strictly (duplicate keys are errors) as
// JSON, and that JSON as a generic value for the schema.
func (doc document) decode(file string) ([]byte, any, ErrorList) {
	js, err := yaml.YAMLToJSONStrict(doc.data)
	if err != nil {
		return nil, nil, doc.fail(file, err.Error())
	}
	var generic any
	if err := json.Unmarshal(js, &generic); err != nil {
		return nil, nil, doc.fail(file, err.Error())
	}
	return js, generic, nil
}

// fail is an error about the whole document.
func (doc document) fail(file, msg string) ErrorList {
	return ErrorList{{File: file, Msg: fmt.Sprintf("document at line %d: %s", doc.line, msg)}}
}

// loadDocument decodes, expands and validates one document. It returns the
// stack only when the document has no errors.
func loadDocument(file string, doc document, opts Options) (*Stack, ErrorList, []FieldError) {
	js, generic, errs := doc.decode(file)
	if errs != nil {
		return nil, errs, nil
	}
	name := stackName(generic)
	if name == "" {
		// name: off is read as false; name the stack as it was written.
		name = scalarToken(doc.data, "name", "boolean")
	}
	errs = schemaErrors(file, name, generic, doc.data)
	if name == "" && len(errs) == 0 {
		errs = doc.fail(file, "metadata.name is missing")
	}

	var st Stack
	if err := json.Unmarshal(js, &st); err != nil {
		// The schema already names the field with the wrong type; else one
		// of the fields with their own decoders failed, and names itself
		// (the target through typedErrors, the baseline as a FieldError).
		var fe FieldError
		if len(errs) == 0 {
			errs = typedErrors(file, name, js)
		}
		switch {
		case len(errs) > 0:
		case errors.As(err, &fe):
			fe.File, fe.Stack = file, name
			errs = ErrorList{fe}
		default:
			errs = doc.fail(file, err.Error())
		}
		return nil, errs, nil
	}
	st.File = file
	sem, warns := check(&st, opts)
	errs = mergeErrors(errs, sem)
	if len(errs) > 0 {
		return nil, errs, warns
	}
	return &st, nil, warns
}

func stackName(doc any) string {
	m, _ := doc.(map[string]any)
	md, _ := m["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	return name
}

// mergeErrors prefers the checks' own messages over the schema's for the
// same field, and keeps every other error.
func mergeErrors(schema, checks ErrorList) ErrorList {
	fields := map[string]bool{}
	for _, e := range checks {
		fields[e.Field] = true
	}
	out := slices.DeleteFunc(schema, func(e FieldError) bool { return fields[e.Field] })
	return append(out, checks...)
}
