package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/amanat/dbops/schemas"
)

var stackSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	return compileSchema("stack.schema.json", schemas.Stack)
})

var notificationSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	return compileSchema("notification.schema.json", schemas.Notification)
})

func compileSchema(url string, src []byte) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.UseRegexpEngine(lazyRegexp)
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	return c.Compile(url)
}

// lazyRegexp compiles a schema's pattern when it is first matched: a stack
// uses a few of the schema's 32 patterns, and compiling them all was a
// tenth of a one-stack plan's CPU. The patterns are the shipped schemas'
// own; TestSchemaPatternsCompile compiles every one.
func lazyRegexp(src string) (jsonschema.Regexp, error) {
	return &lazyPattern{src: src}, nil
}

type lazyPattern struct {
	src  string
	once sync.Once
	re   *regexp.Regexp
}

func (p *lazyPattern) String() string { return p.src }

func (p *lazyPattern) MatchString(s string) bool {
	p.once.Do(func() { p.re = regexp.MustCompile(p.src) })
	return p.re.MatchString(s)
}

// schemaErrors validates a decoded document against schemas/stack.schema.json
// and turns every failed leaf into a FieldError with its field path.
func schemaErrors(file, stack string, doc any, raw []byte) ErrorList {
	sch, err := stackSchema()
	if err != nil {
		panic(fmt.Sprintf("embedded stack schema: %v", err)) // a build defect, caught by tests
	}
	return schemaErrorsWith(sch, file, stack, doc, raw)
}

// schemaErrorsWith is schemaErrors against any of the embedded schemas.
func schemaErrorsWith(sch *jsonschema.Schema, file, stack string, doc any, raw []byte) ErrorList {
	err := sch.Validate(doc)
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return nil
	}
	p := message.NewPrinter(language.English)
	var out ErrorList
	seen := map[string]bool{}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		field := fieldPath(e.InstanceLocation)
		var msgs []FieldError
		switch k := e.ErrorKind.(type) {
		case *kind.AnyOf, *kind.OneOf:
			// One message for the field, not one per alternative ("keepHourly
			// is missing", "keepDaily is missing"...); the checks usually
			// have a better one for the same field.
			msgs = append(msgs, FieldError{Field: field, Msg: "does not match any of the allowed forms (see schemas/stack.schema.json)"})
		case *kind.PropertyNames:
			// The library's InstanceLocation for propertyNames aliases a
			// slice it goes on changing: find the object holding the name.
			if loc, ok := findKey(doc, k.Property, nil); ok {
				field = fieldPath(loc)
			}
			for _, c := range e.Causes {
				msg := c.ErrorKind.LocalizedString(p)
				if d := describe(c.SchemaURL); d != "" {
					msg = d
				}
				msgs = append(msgs, FieldError{Field: joinField(field, k.Property), Msg: "not a valid name: " + msg})
			}
		case *kind.FalseSchema:
			msgs = append(msgs, FieldError{Field: field, Msg: "not allowed"})
		case *kind.Type:
			if (k.Got == "boolean" || k.Got == "number") && slices.Contains(k.Want, "string") {
				msgs = append(msgs, FieldError{Field: field, Msg: yamlTypeHint(raw, field, k.Got)})
			}
		default:
			if len(e.Causes) > 0 {
				for _, c := range e.Causes {
					walk(c)
				}
				return
			}
		}
		switch k := e.ErrorKind.(type) {
		case *kind.AdditionalProperties:
			for _, prop := range k.Properties {
				msgs = append(msgs, FieldError{Field: joinField(field, prop), Msg: "unknown field"})
			}
		case *kind.Required:
			for _, prop := range k.Missing {
				msgs = append(msgs, FieldError{Field: joinField(field, prop), Msg: "required field is missing"})
			}
		case *kind.AnyOf, *kind.OneOf, *kind.PropertyNames, *kind.FalseSchema:
		case *kind.Pattern, *kind.Not:
			// A regular expression tells a user little: say what the field
			// wants, from the schema's own description.
			msg := e.ErrorKind.LocalizedString(p)
			if d := describe(e.SchemaURL); d != "" {
				msg = fmt.Sprintf("%s is not valid here: %s", jsonText(valueAt(doc, e.InstanceLocation)), d)
			}
			msgs = append(msgs, FieldError{Field: field, Msg: msg})
		case *kind.Type:
			if len(msgs) == 0 {
				msgs = append(msgs, FieldError{Field: field, Msg: e.ErrorKind.LocalizedString(p)})
			}
		default:
			msgs = append(msgs, FieldError{Field: field, Msg: e.ErrorKind.LocalizedString(p)})
		}
		for _, m := range msgs {
			m.File, m.Stack = file, stack
			if key := m.Field + "\x00" + m.Msg; !seen[key] {
				seen[key] = true
				out = append(out, m)
			}
		}
	}
	walk(verr)
	slices.SortStableFunc(out, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
	return out
}

var stackSchemaDoc = sync.OnceValue(func() any {
	var v any
	_ = json.Unmarshal(schemas.Stack, &v) // compiled by stackSchema, so valid
	return v
})

var notificationSchemaDoc = sync.OnceValue(func() any {
	var v any
	_ = json.Unmarshal(schemas.Notification, &v) // compiled by notificationSchema, so valid
	return v
})

// describe returns the description of the stack schema node that url (a
// dereferenced schema location) points at; "" when it has none.
func describe(url string) string {
	base, frag, _ := strings.Cut(url, "#")
	node := stackSchemaDoc()
	if strings.HasSuffix(base, "notification.schema.json") {
		node = notificationSchemaDoc()
	}
	for _, tok := range strings.Split(frag, "/") {
		if tok == "" {
			continue
		}
		m, ok := node.(map[string]any)
		if !ok {
			return ""
		}
		node = m[strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")]
	}
	m, _ := node.(map[string]any)
	d, _ := m["description"].(string)
	return d
}

// valueAt returns the value at loc in doc, nil when there is none.
func valueAt(doc any, loc []string) any {
	for _, k := range loc {
		switch v := doc.(type) {
		case map[string]any:
			doc = v[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(v) {
				return nil
			}
			doc = v[i]
		default:
			return nil
		}
	}
	return doc
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// findKey returns the location of the first object in doc with key.
func findKey(doc any, key string, loc []string) ([]string, bool) {
	switch v := doc.(type) {
	case map[string]any:
		if _, ok := v[key]; ok {
			return loc, true
		}
		for _, k := range sortedKeys(v) {
			if l, ok := findKey(v[k], key, append(slices.Clip(loc), k)); ok {
				return l, true
			}
		}
	case []any:
		for i, item := range v {
			if l, ok := findKey(item, key, append(slices.Clip(loc), strconv.Itoa(i))); ok {
				return l, true
			}
		}
	}
	return nil, false
}

// fieldPath writes a JSON pointer the way the checks name fields:
// spec.backups[0].retention.
func fieldPath(loc []string) string {
	var b strings.Builder
	for _, part := range loc {
		if _, err := strconv.Atoi(part); err == nil && b.Len() > 0 {
			b.WriteString("[" + part + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(part)
	}
	return b.String()
}

func joinField(parent, child string) string {
	if parent == "" {
		return child
	}
	return parent + "." + child
}
