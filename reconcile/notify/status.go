package notify

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// EventCommitStatus carries a commit status (CommitState) for the github
// and gitlab receivers only; other receivers never see it.
const EventCommitStatus = "commitStatus"

// Commit states dbops posts. GitLab calls a failure "failed".
const (
	StatePending = "pending"
	StateSuccess = "success"
	StateFailure = "failure"
)

// StatusContext names dbops' status of a stack on a commit.
func StatusContext(stack string) string { return "dbops/" + stack }

// GitHub rejects a description over 140 characters.
const maxDescription = 140

var commitSHA = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// errNotCommit: the revision is a folder snapshot, not a commit.
var errNotCommit = errors.New("the revision is not a git commit (dbops run --dir): no commit status")

func description(ev Event) string {
	d := ev.Summary
	if r := []rune(d); len(r) > maxDescription {
		d = string(r[:maxDescription-1]) + "…"
	}
	return d
}

// GitHubStatus posts commit statuses through GitHub's REST API:
// POST {APIURL}/repos/{owner}/{repo}/statuses/{sha}.
type GitHubStatus struct {
	APIURL, Repository, Token string
	Client                    *http.Client
}

type githubStatusBody struct {
	State       string `json:"state"`
	Description string `json:"description,omitempty"`
	Context     string `json:"context"`
}

func (g *GitHubStatus) Notify(ctx context.Context, ev Event) error {
	if !commitSHA.MatchString(ev.Revision) {
		return errNotCommit
	}
	body, err := json.Marshal(githubStatusBody{State: ev.CommitState, Description: description(ev), Context: StatusContext(ev.Stack)})
	if err != nil {
		return err
	}
	owner, repo, _ := strings.Cut(g.Repository, "/")
	target := g.APIURL + "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(repo) + "/statuses/" + ev.Revision
	h := http.Header{}
	h.Set("Accept", "application/vnd.github+json")
	h.Set("Authorization", "Bearer "+g.Token)
	h.Set("X-GitHub-Api-Version", "2022-11-28")
	return post(ctx, g.Client, target, body, h)
}

// GitLabStatus posts commit statuses through GitLab's REST API:
// POST {APIURL}/projects/{url-encoded path or id}/statuses/{sha}.
type GitLabStatus struct {
	APIURL, Project, Token string
	Client                 *http.Client
}

type gitlabStatusBody struct {
	State       string `json:"state"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

func (g *GitLabStatus) Notify(ctx context.Context, ev Event) error {
	if !commitSHA.MatchString(ev.Revision) {
		return errNotCommit
	}
	state := ev.CommitState
	if state == StateFailure {
		state = "failed"
	}
	body, err := json.Marshal(gitlabStatusBody{State: state, Name: StatusContext(ev.Stack), Description: description(ev)})
	if err != nil {
		return err
	}
	target := g.APIURL + "/projects/" + url.PathEscape(g.Project) + "/statuses/" + ev.Revision
	h := http.Header{}
	h.Set("PRIVATE-TOKEN", g.Token)
	return post(ctx, g.Client, target, body, h)
}
