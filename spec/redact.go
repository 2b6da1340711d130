package spec

import (
	"net/url"
	"regexp"
	"strings"
)

var (
	userinfoPassword = regexp.MustCompile(`(//[^/@:]*:)[^/@]*@`)
	queryPassword    = regexp.MustCompile(`(?i)((?:password|pass)=)[^&\s]*`)
)

// Redact returns a URL with its password replaced by "xxxxx", so it can be
// shown in output, logs and errors. Unparseable input is masked as well.
func Redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		if q := u.Query(); q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	s := userinfoPassword.ReplaceAllString(raw, "${1}xxxxx@")
	return queryPassword.ReplaceAllString(s, "${1}xxxxx")
}

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

// Password returns the password in a URL, "" when there is none.
func Password(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return ""
	}
	p, _ := u.User.Password()
	if p == "" {
		p = u.Query().Get("password")
	}
	return p
}
