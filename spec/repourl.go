package spec

import (
	"net/url"
	"regexp"
	"strings"
)

// RepoLocation is where a git repository URL points: the web host and the
// path of the repository on it, without ".git".
type RepoLocation struct {
	Scheme string // "https" or "http"; "https" for ssh and scp-like URLs
	Host   string // host[:port] of the web server (an ssh port is dropped)
	Path   string // "acme/infra", "group/subgroup/project"
}

var scpRepo = regexp.MustCompile(`^(?:[^@/:]+@)?([^@/:]+):([^/].*)$`)

// ParseRepoURL reads a hosted repository's location from a git URL in the
// forms `dbops run --repo` takes: https://host/owner/name(.git),
// ssh://git@host[:port]/owner/name.git and git@host:owner/name.git. A local
// path or file:// URL has none (ok false).
func ParseRepoURL(raw string) (RepoLocation, bool) {
	raw = strings.TrimSpace(raw)
	var loc RepoLocation
	switch {
	case strings.Contains(raw, "://"):
		u, err := url.Parse(raw)
		if err != nil || u.Hostname() == "" {
			return loc, false
		}
		switch u.Scheme {
		case "https", "http":
			loc.Scheme, loc.Host = u.Scheme, u.Host
		case "ssh", "git+ssh", "git":
			loc.Scheme, loc.Host = "https", u.Hostname()
		default:
			return loc, false
		}
		loc.Path = u.Path
	default:
		m := scpRepo.FindStringSubmatch(raw)
		if m == nil {
			return loc, false
		}
		loc.Scheme, loc.Host, loc.Path = "https", m[1], m[2]
	}
	loc.Path = strings.TrimSuffix(strings.Trim(loc.Path, "/"), ".git")
	if strings.Count(loc.Path, "/") < 1 || strings.Contains(loc.Path, "//") {
		return loc, false
	}
	return loc, true
}

// Default API base URLs of the public services.
const (
	GitHubAPI = "https://api.github.com"
	GitLabAPI = "https://gitlab.com/api/v4"
)

// githubAPIFor is the REST API of a GitHub host: api.github.com for
// github.com, /api/v3 on a GitHub Enterprise Server.
func githubAPIFor(loc RepoLocation) string {
	if strings.EqualFold(loc.Host, "github.com") {
		return GitHubAPI
	}
	return loc.Scheme + "://" + loc.Host + "/api/v3"
}

func gitlabAPIFor(loc RepoLocation) string {
	return loc.Scheme + "://" + loc.Host + "/api/v4"
}

// resolveCommitStatus fills a github/gitlab receiver's repository or project
// and API URL from the repository URL when they are not set: the API of the
// repository's own host then, else the public service's.
func resolveCommitStatus(s *NotificationSpec, repoURL string, bad func(field, format string, args ...any)) {
	loc, ok := ParseRepoURL(repoURL)
	from := "the repository URL is not known here (dbops run --dir, or validate/plan outside a git clone with an origin remote)"
	if repoURL != "" {
		from = "the repository URL " + Redact(repoURL) + " does not name a hosted repository"
	}
	switch s.Type {
	case NotifyGitHub:
		switch {
		case s.Repository != "":
		case ok && strings.Count(loc.Path, "/") == 1:
			s.Repository = loc.Path
			if s.APIURL == "" {
				s.APIURL = githubAPIFor(loc)
			}
		case ok:
			bad("repository", "not set, and %s is not OWNER/NAME on GitHub: set repository: OWNER/NAME", Redact(repoURL))
		default:
			bad("repository", "not set, and %s: set repository: OWNER/NAME", from)
		}
		if s.APIURL == "" {
			s.APIURL = GitHubAPI
		}
	case NotifyGitLab:
		switch {
		case s.Project != "":
		case ok:
			s.Project = loc.Path
			if s.APIURL == "" {
				s.APIURL = gitlabAPIFor(loc)
			}
		default:
			bad("project", "not set, and %s: set project: GROUP/PROJECT (or the numeric project id)", from)
		}
		if s.APIURL == "" {
			s.APIURL = GitLabAPI
		}
	}
	s.APIURL = strings.TrimRight(s.APIURL, "/")
}
