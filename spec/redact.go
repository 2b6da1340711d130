package spec

import (
	"encoding/json"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

var (
	userinfoPassword = regexp.MustCompile(`(//[^/@:]*:)[^/@]*@`)
	queryPassword    = regexp.MustCompile(`(?i)((?:password|pass)=)([^&\s]*)`)
)

// RedactText masks the passwords of any URLs inside a message, without
// otherwise changing it.
func RedactText(s string) string {
	s = userinfoPassword.ReplaceAllString(s, "${1}xxxxx@")
	return queryPassword.ReplaceAllString(s, "${1}xxxxx")
}

// Scrub replaces every occurrence of each secret in s with "xxxxx".
func Scrub(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "xxxxx")
		}
	}
	return s
}

// minSecret is the shortest secret masked: masking one or two characters
// would garble output without protecting anything.
const minSecret = 3

// registry holds every secret Load has seen in this process: connection
// strings, passwords and file secrets. It is the second line of defence
// behind the redaction done where messages are made: everything dbops
// prints goes through Mask.
var registry struct {
	mu      sync.RWMutex
	secrets []string // longest first, so a longer secret is masked whole
}

// RegisterSecrets adds secrets to be masked by Mask from now on.
func RegisterSecrets(secrets ...string) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	for _, s := range secrets {
		if len(strings.TrimSpace(s)) < minSecret {
			continue
		}
		for _, form := range spellings(s) {
			if !slices.Contains(registry.secrets, form) {
				registry.secrets = append(registry.secrets, form)
			}
		}
	}
	slices.SortStableFunc(registry.secrets, func(a, b string) int { return len(b) - len(a) })
}

// spellings are s as it is written raw and as the formats dbops prints
// escape it: JSON strings (/status, --format json, --log-format json; with
// and without HTML escaping), Prometheus label values (/metrics) and Go's
// %q (error texts). A secret with a quote, backslash or control character
// differs in each, and Mask matches bytes.
func spellings(s string) []string {
	out := []string{s}
	add := func(form string) {
		if !slices.Contains(out, form) {
			out = append(out, form)
		}
	}
	for _, html := range []bool{true, false} {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		if enc.Encode(s) == nil {
			add(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(b.String(), "\n"), `"`), `"`))
		}
	}
	add(strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s))
	q := strconv.Quote(s)
	add(q[1 : len(q)-1])
	return out
}

// Mask replaces every registered secret in s with "xxxxx".
func Mask(s string) string {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	return Scrub(s, registry.secrets...)
}

// MaskWriter masks registered secrets in everything written through it.
// Writers of whole lines (fmt.Fprintln, log/slog) are masked line by line.
func MaskWriter(w io.Writer) io.Writer { return maskWriter{w} }

type maskWriter struct{ w io.Writer }

func (m maskWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(m.w, Mask(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Fd lets terminal detection see through the wrapper.
func (m maskWriter) Fd() uintptr {
	if f, ok := m.w.(interface{ Fd() uintptr }); ok {
		return f.Fd()
	}
	return ^uintptr(0)
}
