package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// Class says what retrying an error can do; `dbops run` decides by it.
type Class int

const (
	// ClassFailed: a change was tried and the server refused it (a
	// migration's SQL, a CONFIG SET), or an error of no known class.
	// Retried with backoff.
	ClassFailed Class = iota
	// ClassTransient: the server is unreachable, a lock is held, a timeout.
	// Retried with backoff; it goes away by itself.
	ClassTransient
	// ClassPermanent: the repository must change (a target below the live
	// version without allowDown, an edited applied migration, an unknown
	// Redis parameter). Retrying the same revision fails the same way.
	ClassPermanent
)

func (c Class) String() string {
	switch c {
	case ClassTransient:
		return "transient"
	case ClassPermanent:
		return "permanent"
	}
	return "failed"
}

// Sentinels for errors.Is: errors.Is(err, ErrPermanent).
var (
	ErrTransient = errors.New("transient")
	ErrPermanent = errors.New("permanent")
)

// Error is an error with its class. Server errors are redacted text (the
// driver's error may hold the password), so their class is recorded here
// before the text is cleaned.
type Error struct {
	Class Class
	Err   error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Is matches ErrTransient or ErrPermanent by class.
func (e *Error) Is(target error) bool {
	return target == ErrTransient && e.Class == ClassTransient || target == ErrPermanent && e.Class == ClassPermanent
}

func permanent(err error) error { return classed(ClassPermanent, err) }
func transient(err error) error { return classed(ClassTransient, err) }

func classed(c Class, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Class: c, Err: err}
}

// ClassOf is the class of err: the one recorded in its chain, else
// transient for network failures and timeouts, else failed.
func ClassOf(err error) Class {
	if e := (*Error)(nil); errors.As(err, &e) {
		return e.Class
	}
	var ne net.Error
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe):
		// 08: connection exception; 57P0x: the server shuts down;
		// 55P03: lock not available; 53: insufficient resources.
		if strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P0") || pe.Code == "55P03" || strings.HasPrefix(pe.Code, "53") {
			return ClassTransient
		}
		return ClassFailed
	case errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ClassTransient
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return ClassTransient
	}
	return ClassFailed
}

// Errors are a stack's errors, kept as values (errors.Is/As, ClassOf);
// their JSON form is a list of their texts.
type Errors []error

// Strings renders the errors.
func (es Errors) Strings() []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Error()
	}
	return out
}

// Join renders the errors on one line, separated by sep.
func (es Errors) Join(sep string) string { return strings.Join(es.Strings(), sep) }

// Permanent reports whether every error is permanent: only a change of
// the repository can help.
func (es Errors) Permanent() bool {
	for _, e := range es {
		if ClassOf(e) != ClassPermanent {
			return false
		}
	}
	return len(es) > 0
}

// MarshalJSON writes the texts: ["postgres db:5432/app: cannot connect: ..."].
func (es Errors) MarshalJSON() ([]byte, error) { return json.Marshal(es.Strings()) }

// UnmarshalJSON reads texts back (a saved plan); their class is lost.
func (es *Errors) UnmarshalJSON(b []byte) error {
	var msgs []string
	if err := json.Unmarshal(b, &msgs); err != nil {
		return err
	}
	*es = nil
	for _, m := range msgs {
		*es = append(*es, errors.New(m))
	}
	return nil
}
