package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// NotificationKind identifies a Notification document: where `dbops run`
// reports what it did.
const NotificationKind = "Notification"

// Notification types.
const (
	NotifySlack   = "slack"
	NotifyWebhook = "webhook"
	NotifyGitHub  = "github"
	NotifyGitLab  = "gitlab"
)

// Events a Notification can subscribe to.
const (
	EventApplied         = "applied"
	EventFailed          = "failed"
	EventDrift           = "drift"
	EventRejected        = "rejected"
	EventDeferred        = "deferred"
	EventBackupSucceeded = "backupSucceeded"
	EventBackupFailed    = "backupFailed"
	// EventSchemaDrift: dbops run's schema drift check found the live
	// schema differing from the migrations, differently than last time, or
	// no longer differing.
	EventSchemaDrift = "schemaDrift"
	// EventVerificationFailed: a backup was taken but failed verification.
	EventVerificationFailed = "verificationFailed"
)

// DefaultEvents is what a Notification without events reports: failures only.
var DefaultEvents = []string{EventFailed, EventRejected, EventBackupFailed, EventVerificationFailed}

// Notification is one receiver of the loop's events.
type Notification struct {
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Metadata   Metadata         `json:"metadata"`
	Spec       NotificationSpec `json:"spec"`

	File string `json:"-"`
}

// NotificationSpec is a receiver's configuration. After Load, URL, Secret
// and Token hold the expanded values (registered as secrets, so masked
// wherever dbops prints), Events is never empty, and a github/gitlab
// receiver has its Repository/Project and APIURL.
type NotificationSpec struct {
	Type       string   `json:"type"`
	URL        string   `json:"url,omitempty"`
	Secret     string   `json:"secret,omitempty"`
	Token      string   `json:"token,omitempty"`
	Repository string   `json:"repository,omitempty"`
	Project    string   `json:"project,omitempty"`
	APIURL     string   `json:"apiURL,omitempty"`
	Events     []string `json:"events,omitempty"`
	Stacks     []string `json:"stacks,omitempty"`
	// FailureThreshold: a failing stack is reported when this many cycles
	// in a row failed (1 after Load when not set); "resolved" follows only
	// a failure that was reported.
	FailureThreshold int `json:"failureThreshold,omitempty"`
}

// Wants reports whether the receiver subscribes to event for stack.
func (n *Notification) Wants(event, stack string) bool {
	return slices.Contains(n.Spec.Events, event) && (len(n.Spec.Stacks) == 0 || slices.Contains(n.Spec.Stacks, stack))
}

// documentKind returns the kind of a document, "" when it cannot be read
// (loadDocument then reports why).
func documentKind(doc document) string {
	js, err := yaml.YAMLToJSONStrict(doc.data)
	if err != nil {
		return ""
	}
	var head struct {
		Kind string `json:"kind"`
	}
	_ = json.Unmarshal(js, &head)
	return head.Kind
}

// loadNotification decodes, expands and validates one Notification document.
func loadNotification(file string, doc document, opts Options) (*Notification, ErrorList, []FieldError) {
	js, generic, errs := doc.decode(file)
	if errs != nil {
		return nil, errs, nil
	}
	name := stackName(generic)
	sch, err := notificationSchema()
	if err != nil {
		panic(fmt.Sprintf("embedded notification schema: %v", err)) // a build defect, caught by tests
	}
	errs = schemaErrorsWith(sch, file, "", generic, doc.data)
	for i := range errs {
		// Errors name the notification where others name the stack, and
		// never echo what was written in a credential field.
		errs[i].Notification = name
		if errs[i].Field == "spec.secret" || errs[i].Field == "spec.token" {
			if strings.Contains(errs[i].Msg, "is not valid here") {
				errs[i].Msg = "must be a ${VAR} or ${file:PATH} reference: credentials are not written in the repository (the value is not shown)"
			}
		}
	}
	if name == "" && len(errs) == 0 {
		errs = doc.fail(file, "metadata.name is missing")
	}
	if len(errs) > 0 {
		return nil, errs, nil
	}
	var n Notification
	if err := json.Unmarshal(js, &n); err != nil {
		return nil, doc.fail(file, err.Error()), nil
	}
	n.File = file
	name = n.Metadata.Name
	var warns []FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, FieldError{File: file, Notification: name, Field: "spec." + field, Msg: fmt.Sprintf(format, args...)})
	}
	warn := func(field, msg string) {
		warns = append(warns, FieldError{File: file, Notification: name, Field: "spec." + field, Msg: msg})
	}
	s := &n.Spec
	if s.URL != "" {
		// A Slack webhook URL is itself a credential: the whole value is masked.
		s.URL = expandURL(s.URL, "url", file, opts, bad, warn, checkHTTPURL)
		RegisterSecrets(s.URL)
	}
	if s.APIURL != "" {
		s.APIURL = expandURL(s.APIURL, "apiURL", file, opts, bad, warn, checkHTTPURL)
	}
	for _, c := range []struct {
		field string
		val   *string
	}{{"secret", &s.Secret}, {"token", &s.Token}} {
		if *c.val == "" {
			continue
		}
		if v, ok := expandCredential(*c.val, c.field, file, opts, bad, warn); ok {
			*c.val = v
		}
	}
	if len(s.Events) == 0 {
		s.Events = slices.Clone(DefaultEvents)
	}
	if s.FailureThreshold == 0 {
		s.FailureThreshold = 1
	}
	if s.Type == NotifyGitHub || s.Type == NotifyGitLab {
		resolveCommitStatus(s, opts.RepoURL, bad)
	}
	if len(errs) > 0 {
		return nil, errs, warns
	}
	return &n, nil, warns
}

func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, and a Slack webhook URL is a
		// credential as a whole: give only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("not a URL: %s", RedactText(err.Error()))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an http:// or https:// URL with a host")
	}
	return nil
}

// checkNotifications checks what spans documents: unique names, and that
// stacks names stacks that were loaded.
func checkNotifications(ns []Notification, stacks []Stack) ErrorList {
	var errs ErrorList
	seen := map[string]string{}
	for _, n := range ns {
		label := n.Metadata.Name
		if prev, ok := seen[n.Metadata.Name]; ok {
			errs = append(errs, FieldError{File: n.File, Notification: label, Field: "metadata.name",
				Msg: fmt.Sprintf("duplicate notification name, already defined in %s", prev)})
		}
		seen[n.Metadata.Name] = n.File
		for i, name := range n.Spec.Stacks {
			if !slices.ContainsFunc(stacks, func(s Stack) bool { return s.Metadata.Name == name }) {
				errs = append(errs, FieldError{File: n.File, Notification: label, Field: fmt.Sprintf("spec.stacks[%d]", i),
					Msg: fmt.Sprintf("no stack named %q is loaded: fix the name or remove it", name)})
			}
		}
	}
	return errs
}
