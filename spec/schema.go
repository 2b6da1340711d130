package spec

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
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
func schemaErrors(file, stack string, doc any) ErrorList {
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
		if _, ok := e.ErrorKind.(*kind.PropertyNames); ok {
			// The library reuses the instance location's backing array, so
			// the field path of a propertyNames error is wrong; check()
			// reports bad Redis parameter names with their field path.
			return
		}
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		field := strings.Join(e.InstanceLocation, ".")
		var msgs []FieldError
		switch k := e.ErrorKind.(type) {
		case *kind.AdditionalProperties:
			for _, prop := range k.Properties {
				msgs = append(msgs, FieldError{Field: joinField(field, prop), Msg: "unknown field"})
			}
		case *kind.Required:
			for _, prop := range k.Missing {
				msgs = append(msgs, FieldError{Field: joinField(field, prop), Msg: "required field is missing"})
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

func joinField(parent, child string) string {
	if parent == "" {
		return child
	}
	return parent + "." + child
}
