package spec

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by every error Load returns for a bad spec.
var ErrInvalid = errors.New("invalid spec")

// FieldError is one problem in a spec, located by file, stack and field path.
type FieldError struct {
	File  string // as given on the command line, or relative to it
	Stack string // metadata.name, when known
	// Notification is the metadata.name of a Notification document, when
	// the error is in one (Stack is then empty).
	Notification string
	Field        string // dotted path, e.g. spec.redis.config.maxmemory
	Msg          string
}

func (e FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File + ": ")
	}
	if e.Stack != "" {
		fmt.Fprintf(&b, "stack %q: ", e.Stack)
	}
	if e.Notification != "" {
		fmt.Fprintf(&b, "notification %q: ", e.Notification)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in one load, in file order.
type ErrorList []FieldError

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (l ErrorList) Unwrap() error { return ErrInvalid }
