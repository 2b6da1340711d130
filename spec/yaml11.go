package spec

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// YAML 1.1, which sigs.k8s.io/yaml follows, reads these plain scalars as
// booleans: `name: off` is false, `pci: yes` is true.
var yaml11Bools = []string{"y", "yes", "n", "no", "true", "false", "on", "off"}

// scalarToken finds the plain scalar written for key in a YAML document
// (block `key: value` or flow `{key: value}`) that YAML reads as got
// ("boolean" or "number"); "" when it cannot tell.
func scalarToken(raw []byte, key, got string) string {
	re := regexp.MustCompile(`(?m)(?:^|[\s{,])` + regexp.QuoteMeta(key) + `\s*:[ \t]*([^\s,}\]#"']+)`)
	for _, m := range re.FindAllSubmatch(raw, -1) {
		tok := string(m[1])
		switch {
		case got == "boolean" && slices.Contains(yaml11Bools, strings.ToLower(tok)):
			return tok
		case got == "number" && strings.IndexFunc(tok, func(r rune) bool { return r >= '0' && r <= '9' }) >= 0:
			return tok
		}
	}
	return ""
}

// yamlTypeHint explains a string field that YAML read as a boolean or a
// number, and says what to do.
func yamlTypeHint(raw []byte, field, got string) string {
	key := field[strings.LastIndexAny(field, ".")+1:]
	tok := scalarToken(raw, key, got)
	if tok == "" {
		if got == "boolean" {
			return "YAML reads an unquoted yes, no, on, off, true or false as a boolean: quote the value"
		}
		return "YAML reads an unquoted number as a number: quote the value"
	}
	return fmt.Sprintf("YAML reads %s as a %s: quote it (%s: %q)", tok, got, key, tok)
}
