package spec

import (
	"bytes"
	"errors"
	"fmt"
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
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemas.Stack))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	const url = "stack.schema.json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	return c.Compile(url)
})

// schemaErrors validates a decoded document against schemas/stack.schema.json
// and turns every failed leaf into a FieldError with its field path.
func schemaErrors(file, stack string, doc any, raw []byte) ErrorList {
	sch, err := stackSchema()
	if err != nil {
		panic(fmt.Sprintf("embedded stack schema: %v", err)) // a build defect, caught by tests
	}
	err = sch.Validate(doc)
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
				msgs = append(msgs, FieldError{Field: joinField(field, k.Property), Msg: "not a valid name: " + c.ErrorKind.LocalizedString(p)})
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
