package postgres

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Values are compared the way PostgreSQL's GUC code parses them (guc.c:
// parse_int, parse_real, parse_bool, enum lookup), against the answer of
// pg_settings: its unit, vartype and enumvals.

// memory and time units PostgreSQL accepts, case-sensitively, in bytes and
// microseconds.
var (
	memoryUnits = map[string]float64{"B": 1, "kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
	timeUnits   = map[string]float64{"us": 1, "ms": 1e3, "s": 1e6, "min": 60e6, "h": 3600e6, "d": 86400e6}
)

// unitSize is the size of a pg_settings unit ("8kB", "16MB", "ms", "min")
// in bytes or microseconds, and which table it belongs to.
func unitSize(unit string) (float64, map[string]float64, bool) {
	num, name := splitNumber(unit)
	mult := 1.0
	if num != "" {
		n, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, nil, false
		}
		mult = n
	}
	if v, ok := memoryUnits[name]; ok {
		return mult * v, memoryUnits, true
	}
	if v, ok := timeUnits[name]; ok {
		return mult * v, timeUnits, true
	}
	return 0, nil, false
}

// splitNumber splits "30s" into "30" and "s" (spaces between allowed): the
// number is what strtol/strtod would read (sign, 0x hex, decimals, exponent).
func splitNumber(s string) (num, unit string) {
	s = strings.TrimSpace(s)
	i := 0
	digits := func(hex bool) {
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || hex && strings.ContainsRune("abcdefABCDEF", rune(s[i]))) {
			i++
		}
	}
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	if strings.HasPrefix(s[i:], "0x") || strings.HasPrefix(s[i:], "0X") {
		i += 2
		digits(true)
		return s[:i], strings.TrimSpace(s[i:])
	}
	digits(false)
	if i < len(s) && s[i] == '.' {
		i++
		digits(false)
	}
	if i+1 < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if s[j] == '+' || s[j] == '-' {
			j++
		}
		if j < len(s) && s[j] >= '0' && s[j] <= '9' {
			i = j
			digits(false)
		}
	}
	return s[:i], strings.TrimSpace(s[i:])
}

// numberIn reads v (a number with an optional unit) in the setting's unit.
func numberIn(v, unit string) (float64, error) {
	num, u := splitNumber(v)
	if num == "" {
		return 0, fmt.Errorf("%q is not a number", v)
	}
	var n float64
	if i, err := strconv.ParseInt(num, 0, 64); err == nil {
		n = float64(i)
	} else if f, err := strconv.ParseFloat(num, 64); err == nil {
		n = f
	} else {
		return 0, fmt.Errorf("%q is not a number", v)
	}
	if u == "" {
		return n, nil
	}
	size, table, ok := unitSize(unit)
	if !ok {
		return 0, fmt.Errorf("%q has a unit but this parameter has none", v)
	}
	f, ok := table[u]
	if !ok {
		return 0, fmt.Errorf("%q: unit %q is not one PostgreSQL accepts here (%s; case matters)", v, u, unitList(table))
	}
	return n * f / size, nil
}

func unitList(table map[string]float64) string {
	names := make([]string, 0, len(table))
	for k := range table {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int { return int(table[a] - table[b]) })
	return strings.Join(names, ", ")
}

// parseBool is PostgreSQL's parse_bool: on/off, true/false, yes/no, 1/0
// and unique prefixes, any case.
func parseBool(v string) (bool, bool) {
	s := strings.ToLower(strings.TrimSpace(v))
	if s == "" {
		return false, false
	}
	switch {
	case s == "1" || s == "on" || strings.HasPrefix("true", s) || strings.HasPrefix("yes", s):
		return true, true
	case s == "0" || s == "off" || s == "of" || strings.HasPrefix("false", s) || strings.HasPrefix("no", s):
		return false, true
	}
	return false, false
}

// listParams are GUC_LIST_QUOTE parameters: their elements are separate
// literals in ALTER SYSTEM SET, and are compared as lists.
var listParams = map[string]bool{
	"search_path": true, "shared_preload_libraries": true, "session_preload_libraries": true,
	"local_preload_libraries": true, "temp_tablespaces": true, "unix_socket_directories": true,
}

// ListElements splits a list parameter's value: commas, spaces and the
// double quotes pg_settings shows ("$user", public).
func ListElements(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ",") {
		e = strings.Trim(strings.TrimSpace(e), `"`)
		if e != "" {
			out = append(out, e)
		}
	}
	return out
}

// Canonical is a value as the server would store it for setting s, for
// comparison; an error says why the server would refuse it.
func Canonical(s Setting, v string) (string, error) {
	switch s.Vartype {
	case "bool":
		b, ok := parseBool(v)
		if !ok {
			return "", fmt.Errorf("%q is not a boolean (on/off, true/false, yes/no, 1/0)", v)
		}
		if b {
			return "on", nil
		}
		return "off", nil
	case "integer":
		n, err := numberIn(v, s.Unit)
		if err != nil {
			return "", err
		}
		r := math.RoundToEven(n) // rint, as the server rounds
		if r > math.MaxInt64 || r < math.MinInt64 {
			return "", fmt.Errorf("%q is out of range", v)
		}
		return strconv.FormatInt(int64(r), 10), nil
	case "real":
		n, err := numberIn(v, s.Unit)
		if err != nil {
			return "", err
		}
		// the server stores a double and prints it with %g precision
		return strconv.FormatFloat(n, 'g', 15, 64), nil
	case "enum":
		for _, e := range s.EnumVals {
			if strings.EqualFold(e, strings.TrimSpace(v)) {
				return e, nil
			}
		}
		// hidden boolean spellings of on/off enums (synchronous_commit: true)
		if b, ok := parseBool(v); ok && slices.Contains(s.EnumVals, "on") && slices.Contains(s.EnumVals, "off") {
			if b {
				return "on", nil
			}
			return "off", nil
		}
		return "", fmt.Errorf("%q is not one of the values the server accepts: %s", v, strings.Join(s.EnumVals, ", "))
	}
	if listParams[s.Name] {
		return strings.Join(ListElements(v), ", "), nil
	}
	return v, nil
}

// Equal reports whether the live setting holds want.
func Equal(s Setting, live, want string) (bool, error) {
	w, err := Canonical(s, want)
	if err != nil {
		return false, err
	}
	l, err := Canonical(s, live)
	if err != nil {
		return false, nil // the server's own answer: differs
	}
	if s.Vartype == "real" {
		a, _ := strconv.ParseFloat(l, 64)
		b, _ := strconv.ParseFloat(w, 64)
		return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)), nil
	}
	return l == w, nil
}

// Show formats a live setting with its unit for a plan: 30000 (ms) as "30000ms".
func Show(s Setting, v string) string {
	if s.Unit == "" || v == "-1" || v == "0" || (s.Vartype != "integer" && s.Vartype != "real") {
		return v
	}
	if _, _, ok := unitSize(s.Unit); ok && !strings.ContainsAny(s.Unit, "0123456789") {
		return v + s.Unit
	}
	return v + " × " + s.Unit
}
