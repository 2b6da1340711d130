package notify

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/amanat/dbops/spec"
)

// Options configure a Dispatcher. Zero values get the defaults in brackets.
type Options struct {
	Logger *slog.Logger // [discard]
	// QueueSize bounds events waiting for delivery; more are dropped and
	// logged [1000: a commit reaching every stack of a large fleet posts
	// two commit statuses per stack and receiver].
	QueueSize int
	// Attempts per delivery, the first included [4].
	Attempts int
	// Timeout of one attempt [10s].
	Timeout time.Duration
	// Backoff before the second attempt, doubled after each [1s].
	Backoff time.Duration
	// Count, when set, is told each delivery's outcome: result is
	// "sent", "failed", "dropped" or "skipped" (dbops_notifications_total).
	Count func(provider, result string)
	// Client sends the requests [a client with Timeout].
	Client *http.Client
}

type target struct {
	n        spec.Notification
	notifier Notifier
}

type job struct {
	t  target
	ev Event
}

// Dispatcher fans events out to the receivers that want them, from one
// goroutine fed by a bounded queue: Publish never waits on a receiver.
type Dispatcher struct {
	o       Options
	mu      sync.Mutex
	targets []target
	queue   chan job
	done    chan struct{}
	// noCommit names the commit-status receivers already warned that the
	// source has no commits (dbops run --dir).
	noCommit map[string]bool
}

// New returns a dispatcher; Start runs its deliveries.
func New(o Options) *Dispatcher {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 1000
	}
	if o.Attempts <= 0 {
		o.Attempts = 4
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	return &Dispatcher{o: o, queue: make(chan job, o.QueueSize), done: make(chan struct{}), noCommit: map[string]bool{}}
}

// Configure replaces the receivers, with those of the revision in force.
func (d *Dispatcher) Configure(ns []spec.Notification) {
	var ts []target
	for _, n := range ns {
		var nt Notifier
		switch n.Spec.Type {
		case spec.NotifySlack:
			nt = &Slack{URL: n.Spec.URL, Client: d.o.Client}
		case spec.NotifyWebhook:
			nt = &Webhook{URL: n.Spec.URL, Secret: n.Spec.Secret, Client: d.o.Client}
		case spec.NotifyGitHub:
			nt = &GitHubStatus{APIURL: n.Spec.APIURL, Repository: n.Spec.Repository, Token: n.Spec.Token, Client: d.o.Client}
		case spec.NotifyGitLab:
			nt = &GitLabStatus{APIURL: n.Spec.APIURL, Project: n.Spec.Project, Token: n.Spec.Token, Client: d.o.Client}
		default:
			d.o.Logger.Warn("notification type not delivered by this dbops version; ignored", "notification", n.Metadata.Name, "type", n.Spec.Type)
			continue
		}
		ts = append(ts, target{n: n, notifier: nt})
	}
	d.mu.Lock()
	d.targets = ts
	d.mu.Unlock()
}

// Publish queues ev for every receiver that wants it, without waiting: when
// the queue is full the event is dropped and logged.
func (d *Dispatcher) Publish(ev Event) {
	if d == nil {
		return
	}
	ev.Version = PayloadVersion
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	want := ev.Event
	if want == EventResolved {
		want = spec.EventFailed
	}
	d.mu.Lock()
	ts := d.targets
	d.mu.Unlock()
	for _, t := range ts {
		if !t.wants(want, ev) {
			continue
		}
		select {
		case d.queue <- job{t: t, ev: ev}:
		default:
			d.o.Logger.Warn("notification dropped: the delivery queue is full", "notification", t.n.Metadata.Name, "stack", ev.Stack, "event", ev.Event)
			d.count(t, "dropped")
		}
	}
}

// wants says whether target t hears ev: commit statuses go to github and
// gitlab receivers only, and the others hear the events they subscribe to,
// a failure once the run of failures reaches their threshold.
func (t target) wants(event string, ev Event) bool {
	status := t.n.Spec.Type == spec.NotifyGitHub || t.n.Spec.Type == spec.NotifyGitLab
	if status || ev.Event == EventCommitStatus {
		return status && ev.Event == EventCommitStatus && (len(t.n.Spec.Stacks) == 0 || slices.Contains(t.n.Spec.Stacks, ev.Stack))
	}
	if !t.n.Wants(event, ev.Stack) {
		return false
	}
	n := max(t.n.Spec.FailureThreshold, 1)
	c, first := ev.Consecutive, ev.First
	if c == 0 {
		c, first = 1, true
	}
	switch ev.Event {
	case spec.EventFailed:
		// The run reaches the threshold now, or a new revision fails
		// while the run is past it.
		return c == n || (first && c >= n)
	case EventResolved:
		return c >= n // only a failure that was reported is resolved
	}
	return true
}

// Start delivers queued events until ctx ends; Wait returns after that.
func (d *Dispatcher) Start(ctx context.Context) {
	go func() {
		defer close(d.done)
		for {
			select {
			case <-ctx.Done():
				return
			case j := <-d.queue:
				d.deliver(ctx, j)
			}
		}
	}()
}

// Wait returns when the delivery goroutine has stopped.
func (d *Dispatcher) Wait() { <-d.done }

func (d *Dispatcher) deliver(ctx context.Context, j job) {
	delay := d.o.Backoff
	var err error
	tries := 0
	for attempt := 1; attempt <= d.o.Attempts; attempt++ {
		tries = attempt
		actx, cancel := context.WithTimeout(ctx, d.o.Timeout)
		err = j.t.notifier.Notify(actx, j.ev)
		cancel()
		if errors.Is(err, errNotCommit) {
			// Not a delivery failure: there is no commit to put a status
			// on. Said once per receiver, counted as skipped.
			if !d.noCommit[j.t.n.Metadata.Name] {
				d.noCommit[j.t.n.Metadata.Name] = true
				d.o.Logger.Warn("commit statuses are not posted: the source is a folder, not a git repository (dbops run --dir)",
					"notification", j.t.n.Metadata.Name, "type", j.t.n.Spec.Type)
			}
			d.count(j.t, "skipped")
			return
		}
		if err == nil {
			d.count(j.t, "sent")
			d.o.Logger.Debug("notification sent", "notification", j.t.n.Metadata.Name, "stack", j.ev.Stack, "event", j.ev.Event, "attempt", attempt)
			return
		}
		if !retryable(err) || attempt == d.o.Attempts {
			break
		}
		select {
		case <-ctx.Done():
			attempt = d.o.Attempts
		case <-time.After(delay):
		}
		delay *= 2
	}
	d.o.Logger.Error("notification not delivered", "notification", j.t.n.Metadata.Name, "type", j.t.n.Spec.Type,
		"stack", j.ev.Stack, "event", j.ev.Event, "attempts", tries, "err", spec.Mask(err.Error()))
	d.count(j.t, "failed")
}

func (d *Dispatcher) count(t target, result string) {
	if d.o.Count != nil {
		d.o.Count(t.n.Spec.Type, result)
	}
}
