package risk

import (
	"errors"
	"fmt"
	"strings"
)

// SplitGoose returns the SQL of the Up section (down=false) or the Down
// section (down=true) of a goose SQL migration file.
//
// Annotations are recognised as goose does (a line starting with "--" and
// containing "+goose", case-insensitive); StatementBegin/End, NO TRANSACTION
// and ENVSUB lines are dropped, since the parser reads whole SQL. Every line
// outside the section is kept as an empty line, so line numbers in parse
// errors are those of the file. A file without an Up annotation is an error;
// a file without a Down section has an empty Down.
func SplitGoose(file []byte, down bool) (string, error) {
	const (
		before = iota
		up
		dn
	)
	state := before
	lines := strings.Split(string(file), "\n")
	var b strings.Builder
	for i, line := range lines {
		keep := false
		if a, ok := gooseAnnotation(line); ok {
			switch a {
			case "up":
				if state != before {
					return "", fmt.Errorf("line %d: duplicate '-- +goose Up' annotation", i+1)
				}
				state = up
			case "down":
				if state == before {
					return "", fmt.Errorf("line %d: '-- +goose Down' before '-- +goose Up'", i+1)
				}
				if state == dn {
					return "", fmt.Errorf("line %d: duplicate '-- +goose Down' annotation", i+1)
				}
				state = dn
			case "statementbegin", "statementend", "no transaction", "envsub on", "envsub off":
			default:
				return "", fmt.Errorf("line %d: unknown goose annotation %q", i+1, strings.TrimSpace(line))
			}
		} else {
			switch state {
			case before:
				if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "--") {
					return "", fmt.Errorf("line %d: SQL before the '-- +goose Up' annotation", i+1)
				}
			case up:
				keep = !down
			case dn:
				keep = down
			}
		}
		if keep {
			b.WriteString(line)
		}
		if i < len(lines)-1 {
			b.WriteByte('\n')
		}
	}
	if state == before {
		return "", errors.New("no '-- +goose Up' annotation")
	}
	return b.String(), nil
}

// gooseAnnotation returns the lower-cased annotation of a goose
// "-- +goose X" line.
func gooseAnnotation(line string) (string, bool) {
	t := strings.TrimSpace(line)
	if !strings.HasPrefix(t, "--") || !strings.Contains(t, "+goose") {
		return "", false
	}
	a := strings.TrimPrefix(t, "--")
	a = strings.Replace(a, "+goose", "", 1)
	return strings.ToLower(strings.Join(strings.Fields(a), " ")), true
}
