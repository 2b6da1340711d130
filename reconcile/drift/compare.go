package drift

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Change says how a live object differs from the expected one.
const (
	Extra   = "extra"   // exists live, not in migrations
	Missing = "missing" // in migrations, missing live
	Changed = "changed" // both, with different definitions
)

// Item is one drifted object, as plain data.
type Item struct {
	Kind     string `json:"kind"`
	Name     string `json:"name"`
	Change   string `json:"change"`
	Live     string `json:"live,omitempty"`
	Expected string `json:"expected,omitempty"`
	// SQL would make the live object match, for a human to review; dbops
	// never runs it. Empty when no single statement does.
	SQL string `json:"sql,omitempty"`
}

// String is the item as one line: "index payments_hash_idx exists live,
// not in migrations"; "column users.email: character varying(320) live,
// text expected".
func (it Item) String() string {
	switch it.Change {
	case Extra:
		return fmt.Sprintf("%s %s exists live, not in migrations", it.Kind, it.Name)
	case Missing:
		return fmt.Sprintf("%s %s missing live", it.Kind, it.Name)
	}
	return fmt.Sprintf("%s %s: %s live, %s expected", it.Kind, it.Name, it.Live, it.Expected)
}

// Compare lists the drift of live from expected, sorted by kind and name.
// A column's table missing or extra is reported once, as the table.
func Compare(expected, live Schema) []Item {
	var items []Item
	keys := map[string]bool{}
	for k := range expected {
		keys[k] = true
	}
	for k := range live {
		keys[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		e, inE := expected[k]
		l, inL := live[k]
		switch {
		case inE && inL && e.Def == l.Def:
			continue
		case inE && inL:
			it := Item{Kind: e.Kind, Name: e.Name, Change: Changed, Live: l.Def, Expected: e.Def}
			it.SQL = fixSQL(it, e)
			items = append(items, it)
		case inL:
			if parentDrifted(l, expected, live) {
				continue
			}
			it := Item{Kind: l.Kind, Name: l.Name, Change: Extra, Live: l.Def}
			it.SQL = fixSQL(it, l)
			items = append(items, it)
		default:
			if parentDrifted(e, expected, live) {
				continue
			}
			it := Item{Kind: e.Kind, Name: e.Name, Change: Missing, Expected: e.Def}
			it.SQL = fixSQL(it, e)
			items = append(items, it)
		}
	}
	slices.SortStableFunc(items, func(a, b Item) int {
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return items
}

// parentDrifted: a column, constraint, trigger or policy whose table is
// itself extra or missing is part of that item, not one of its own.
func parentDrifted(o Object, expected, live Schema) bool {
	switch o.Kind {
	case "column", "constraint", "trigger", "policy":
	default:
		return false
	}
	i := strings.LastIndex(o.Name, ".")
	if i < 0 {
		return false
	}
	table := o.Name[:i]
	_, inE := expected[key("table", table)]
	_, inL := live[key("table", table)]
	if !inE && !inL { // a view's column
		_, inE = expected[key("view", table)]
		_, inL = live[key("view", table)]
	}
	return inE != inL
}
