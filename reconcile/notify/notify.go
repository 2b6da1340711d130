// Package notify delivers what `dbops run` did (a change applied or failed,
// drift, a rejected revision, a backup) to Slack and webhook receivers
// declared by Notification documents. Delivery runs beside the loop: a
// bounded queue, bounded retries with a timeout per attempt, and failures
// logged, never blocking a reconcile.
package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/amanat/dbops/spec"
)

// PayloadVersion names the shape of Event as JSON; a breaking change gets a
// new version.
const PayloadVersion = "dbops.notification/v1"

// Event is one thing to report: the webhook body as sent.
type Event struct {
	Version  string `json:"version"`
	Event    string `json:"event"` // spec.Event*, or "resolved"
	Stack    string `json:"stack"`
	Revision string `json:"revision,omitempty"`
	// Summary is one line for humans.
	Summary string   `json:"summary"`
	Changes []string `json:"changes,omitempty"`
	Errors  []string `json:"errors,omitempty"`
	// Corrected says whether drift was put back (drift events only).
	Corrected *bool     `json:"corrected,omitempty"`
	Time      time.Time `json:"time"`

	// CommitState is the state of an EventCommitStatus (Pending, Success,
	// Failure).
	CommitState string `json:"-"`
	// Consecutive counts the failed cycles in a row, this one included
	// (failed events), or before recovery (resolved events); First says a
	// failed event starts a new state (a first failure, or another revision
	// failing). With NotificationSpec.FailureThreshold they decide who hears
	// it. Zero: reported to every receiver that wants the event.
	Consecutive int  `json:"-"`
	First       bool `json:"-"`
}

// EventResolved reports that a stack that failed is in sync again; it goes
// to receivers of EventFailed.
const EventResolved = "resolved"

// A Notifier delivers one event to one receiver.
type Notifier interface {
	Notify(ctx context.Context, ev Event) error
}

// StatusError is a receiver's non-2xx answer. 5xx and 429 are retried.
type StatusError struct{ Code int }

func (e *StatusError) Error() string {
	return fmt.Sprintf("receiver answered HTTP %d", e.Code)
}

// retryable reports whether another attempt may succeed: a 5xx, a 429, a
// timeout or a connection that failed. A 4xx will not get better.
func retryable(err error) bool {
	if errors.Is(err, errNotCommit) {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code >= 500 || se.Code == http.StatusTooManyRequests
	}
	return err != nil
}

// post sends a JSON body. Errors never carry the URL: a Slack webhook URL is
// a credential.
func post(ctx context.Context, client *http.Client, target string, body []byte, header http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return errors.New("building the request failed (URL not shown)")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "dbops")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop "Post \"https://hooks.slack.com/...\": "
		}
		return fmt.Errorf("sending failed: %s", spec.Mask(err.Error()))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &StatusError{Code: resp.StatusCode}
	}
	return nil
}
