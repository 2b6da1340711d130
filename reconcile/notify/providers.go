package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// SignatureHeader carries "sha256=<hex HMAC-SHA256 of the body>" when a
// webhook has a secret.
const SignatureHeader = "X-Dbops-Signature-256"

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Webhook posts the Event as JSON, signed when Secret is set.
type Webhook struct {
	URL, Secret string
	Client      *http.Client
}

func (w *Webhook) Notify(ctx context.Context, ev Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	h := http.Header{}
	if w.Secret != "" {
		h.Set(SignatureHeader, Sign(w.Secret, body))
	}
	return post(ctx, w.Client, w.URL, body, h)
}

// Slack posts to an incoming webhook: a one-line summary, then the changes
// or errors as a list.
type Slack struct {
	URL    string
	Client *http.Client
}

// SlackMessage is the incoming-webhook body.
type SlackMessage struct {
	Text string `json:"text"`
}

func (s *Slack) Notify(ctx context.Context, ev Event) error {
	body, err := json.Marshal(SlackMessage{Text: SlackText(ev)})
	if err != nil {
		return err
	}
	return post(ctx, s.Client, s.URL, body, nil)
}

var slackIcons = map[string]string{
	"applied": ":white_check_mark:", "failed": ":x:", "drift": ":warning:", "rejected": ":no_entry:",
	"deferred": ":hourglass:", "backupSucceeded": ":floppy_disk:", "backupFailed": ":x:", "verificationFailed": ":x:", EventResolved: ":white_check_mark:",
}

// SlackText renders an event as Slack mrkdwn.
func SlackText(ev Event) string {
	var b strings.Builder
	icon := slackIcons[ev.Event]
	if icon == "" {
		icon = ":information_source:"
	}
	fmt.Fprintf(&b, "%s *%s* %s: %s", icon, slackEscape(ev.Stack), ev.Event, slackEscape(ev.Summary))
	if ev.Revision != "" {
		fmt.Fprintf(&b, " (revision `%s`)", slackEscape(short(ev.Revision)))
	}
	for _, c := range ev.Changes {
		b.WriteString("\n• " + slackEscape(c))
	}
	for _, e := range ev.Errors {
		b.WriteString("\n• " + slackEscape(e))
	}
	return b.String()
}

// slackEscaper escapes the three characters Slack's mrkdwn reserves; built
// once, not per line of every message.
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func slackEscape(s string) string { return slackEscaper.Replace(s) }

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
