package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/go-git/go-git/v5"
)

// SavedFormat identifies a saved plan file (`dbops plan --out`).
const SavedFormat = "dbops.saved-plan/v1"

// Saved is a plan written for a later `dbops apply plan.json`, with the
// fingerprint of what it was made from. It holds no secrets: servers are
// named host:port/db and the spec is recorded by file hashes.
type Saved struct {
	FormatVersion string          `json:"formatVersion"`
	Plan          *Plan           `json:"plan"`
	Spec          SpecFingerprint `json:"spec"`
}

// SpecFingerprint records the spec files a plan was made from.
type SpecFingerprint struct {
	Paths    []string          `json:"paths"`              // as given to plan, relative to its working directory
	Revision string            `json:"revision,omitempty"` // git HEAD of the repository holding them, when there is one
	Files    map[string]string `json:"files"`              // file → SHA-256
}

// Fingerprint hashes the spec files and, inside git, notes the revision.
func Fingerprint(paths, files []string) (SpecFingerprint, error) {
	fp := SpecFingerprint{Paths: paths, Files: map[string]string{}}
	for _, f := range files {
		sum, err := hashFile(f)
		if err != nil {
			return fp, err
		}
		fp.Files[f] = sum
	}
	if len(files) > 0 {
		if repo, err := git.PlainOpenWithOptions(filepath.Dir(files[0]), &git.PlainOpenOptions{DetectDotGit: true}); err == nil {
			if head, err := repo.Head(); err == nil {
				fp.Revision = head.Hash().String()
			}
		}
	}
	return fp, nil
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Moved lists what differs between the saved plan and now: spec files, the
// live state observed, and the changes a fresh plan would make. An empty
// list means applying the saved plan does exactly what was reviewed.
func (s *Saved) Moved(fresh *Plan, now SpecFingerprint) []string {
	var out []string
	for _, f := range slices.Sorted(maps.Keys(s.Spec.Files)) {
		switch sum, ok := now.Files[f]; {
		case !ok:
			out = append(out, fmt.Sprintf("spec file %s is gone", f))
		case sum != s.Spec.Files[f]:
			out = append(out, fmt.Sprintf("spec file %s changed", f))
		}
	}
	for _, f := range slices.Sorted(maps.Keys(now.Files)) {
		if _, ok := s.Spec.Files[f]; !ok {
			out = append(out, fmt.Sprintf("spec file %s is new", f))
		}
	}
	freshBy := map[string]*StackPlan{}
	for i := range fresh.Stacks {
		freshBy[fresh.Stacks[i].Stack] = &fresh.Stacks[i]
	}
	for i := range s.Plan.Stacks {
		old := &s.Plan.Stacks[i]
		cur, ok := freshBy[old.Stack]
		if !ok {
			out = append(out, fmt.Sprintf("stack %s is no longer in the spec", old.Stack))
			continue
		}
		delete(freshBy, old.Stack)
		out = append(out, StackMoved(old, cur)...)
	}
	for name := range freshBy {
		out = append(out, fmt.Sprintf("stack %s is new", name))
	}
	return out
}

// StackMoved lists what differs between a stack's plan old and a fresh plan
// cur of it: what it observed, and the changes it would make.
func StackMoved(old, cur *StackPlan) []string {
	var out []string
	say := func(format string, args ...any) {
		out = append(out, fmt.Sprintf("stack %s: ", old.Stack)+fmt.Sprintf(format, args...))
	}
	if len(cur.Errors) > 0 {
		say("cannot be planned now: %s", cur.Errors.Join("; "))
		return out
	}
	if old.Postgres != nil && cur.Postgres != nil && !slices.Equal(old.Postgres.Applied, cur.Postgres.Applied) {
		word, was, _ := old.Postgres.Levels()
		_, now, _ := cur.Postgres.Levels()
		say("postgres migration %s was %s, now %s (applied versions changed)", word, was, now)
	}
	if old.Redis != nil && cur.Redis != nil {
		for _, k := range slices.Sorted(maps.Keys(old.Redis.Observed)) {
			if v, ok := cur.Redis.Observed[k]; !ok || v != old.Redis.Observed[k] {
				say("redis %s was %q, now %q", k, old.Redis.Observed[k], v)
			}
		}
		if old.Redis.Persisted != cur.Redis.Persisted {
			say("redis config file changed (%q, now %q)", old.Redis.ConfigFile, cur.Redis.ConfigFile)
		}
	}
	key := func(c Change) string { return c.Resource + " " + string(c.Action) + " " + c.After }
	was, now := map[string]bool{}, map[string]bool{}
	for _, c := range old.Changes {
		was[key(c)] = true
	}
	for _, c := range cur.Changes {
		now[key(c)] = true
		if !was[key(c)] {
			say("a fresh plan also has %s %s → %s", c.Resource, c.Action, c.After)
		}
	}
	for _, c := range old.Changes {
		if !now[key(c)] {
			say("a fresh plan no longer has %s %s → %s", c.Resource, c.Action, c.After)
		}
	}
	// Risk is judged against the live data (an empty table may have filled).
	risks := map[string]string{}
	for _, c := range cur.Changes {
		risks[key(c)] = c.Risk
	}
	for _, c := range old.Changes {
		if r, ok := risks[key(c)]; ok && r != c.Risk {
			say("%s was planned as %s, now %s", c.Resource, riskWord(c.Risk), riskWord(r))
		}
	}
	return out
}

func riskWord(r string) string {
	if r == "" {
		return "not risky"
	}
	return "risky (" + r + ")"
}
