package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/render"
)

// DefaultProgressInterval is how often a long change says it is still
// running (terraform's "Still creating... [20s elapsed]").
const DefaultProgressInterval = 10 * time.Second

// progress prints each change as apply starts and ends it, with its
// duration, and a "still running" line every interval for a long one. On a
// terminal a running backup also gets a live line (bytes written, rate)
// redrawn in place; without one, output is plain lines with no control
// characters, and the backup's bytes go on its "still running" lines.
type progress struct {
	w        io.Writer
	style    render.Style
	tty      bool
	interval time.Duration

	mu      sync.Mutex
	tasks   map[string]*task
	live    bool // a live line is on screen (terminal only)
	stopped bool
	// interrupted holds what was running when Ctrl-C came, then how it ended.
	interrupted map[string]*reconcile.ChangeResult
	quit        chan struct{}
	wg          sync.WaitGroup
}

type task struct {
	c       reconcile.Change
	start   time.Time
	written int64
	done    chan struct{}
}

func newProgress(w io.Writer, style render.Style, tty bool, interval time.Duration) *progress {
	if interval <= 0 {
		interval = DefaultProgressInterval
	}
	p := &progress{w: w, style: style, tty: tty, interval: interval, tasks: map[string]*task{}, quit: make(chan struct{})}
	if tty {
		p.wg.Add(1)
		go p.redraw()
	}
	return p
}

func key(c reconcile.Change) string { return c.Stack + "\x00" + c.Resource + "\x00" + string(c.Action) }

// line prints one line, first clearing a live line.
func (p *progress) line(format string, args ...any) {
	if p.live {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.live = false
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

func (p *progress) Started(c reconcile.Change) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := &task{c: c, start: time.Now(), done: make(chan struct{})}
	p.tasks[key(c)] = t
	p.line("  %s: %s %s", c.Stack, p.style.Bold("started"), render.Label(c))
	p.wg.Add(1)
	go p.tick(t)
}

func (p *progress) Written(c reconcile.Change, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t := p.tasks[key(c)]; t != nil {
		t.written = total
	}
}

func (p *progress) Finished(r reconcile.ChangeResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := key(r.Change)
	t := p.tasks[k]
	if t == nil { // ended without starting (nothing to do)
		return
	}
	delete(p.tasks, k)
	close(t.done)
	elapsed := time.Since(t.start).Round(time.Millisecond)
	extra := ""
	if t.written > 0 {
		extra = fmt.Sprintf(" (%s, %s)", render.HumanBytes(t.written), rate(t.written, elapsed))
	}
	switch r.Status {
	case reconcile.StatusDone:
		p.line("  %s: %s %s in %s%s", r.Stack, p.style.Green("done"), render.Label(r.Change), elapsed, extra)
	default:
		msg := r.Error
		if msg == "" {
			msg = string(r.Status)
		}
		p.line("  %s: %s %s after %s: %s", r.Stack, p.style.Red(string(r.Status)), render.Label(r.Change), elapsed, msg)
	}
	if _, ok := p.interrupted[k]; ok {
		p.interrupted[k] = &r
	}
}

// tick says every interval that t is still running.
func (p *progress) tick(t *task) {
	defer p.wg.Done()
	tk := time.NewTicker(p.interval)
	defer tk.Stop()
	for n := 1; ; n++ {
		select {
		case <-t.done:
			return
		case <-p.quit:
			return
		case <-tk.C:
		}
		p.mu.Lock()
		if _, running := p.tasks[key(t.c)]; running {
			extra := ""
			if t.written > 0 {
				extra = ", " + render.HumanBytes(t.written) + " written"
			}
			// n intervals, not the wall clock: the line reads 10s, 20s, 30s.
			p.line("  %s: still running %s (%s elapsed%s)", t.c.Stack, render.Label(t.c), time.Duration(n)*p.interval, extra)
		}
		p.mu.Unlock()
	}
}

// redraw keeps the live line of running backups current on a terminal.
func (p *progress) redraw() {
	defer p.wg.Done()
	tk := time.NewTicker(500 * time.Millisecond)
	defer tk.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-tk.C:
		}
		p.mu.Lock()
		var parts []string
		for _, t := range p.tasks {
			if t.c.Kind == reconcile.ResourceBackup {
				el := time.Since(t.start)
				parts = append(parts, fmt.Sprintf("%s: backup %s: %s written, %s, %s", t.c.Stack, t.c.Name,
					render.HumanBytes(t.written), rate(t.written, el), el.Round(time.Second)))
			}
		}
		if len(parts) > 0 {
			fmt.Fprint(p.w, "\r\x1b[K  "+strings.Join(parts, "; "))
			p.live = true
		} else if p.live {
			fmt.Fprint(p.w, "\r\x1b[K")
			p.live = false
		}
		p.mu.Unlock()
	}
}

// interrupt notes what is running when Ctrl-C comes, and says what happens next.
func (p *progress) interrupt(grace time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.interrupted = map[string]*reconcile.ChangeResult{}
	var names []string
	for k, t := range p.tasks {
		p.interrupted[k] = nil
		names = append(names, t.c.Stack+": "+render.Label(t.c))
	}
	if len(names) == 0 {
		p.line("Interrupted: stopping before the next change.")
		return
	}
	p.line("Interrupted: stopping before the next change; letting %s finish (a migration gets %s, then its transaction is rolled back).",
		strings.Join(names, ", "), grace)
}

// close stops the tickers and clears a live line.
func (p *progress) close() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	close(p.quit)
	p.mu.Unlock()
	p.wg.Wait()
	p.mu.Lock()
	if p.live {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.live = false
	}
	p.mu.Unlock()
}

// interruptedOutcome says how each change running at Ctrl-C ended and how
// many were never started.
func (p *progress) interruptedOutcome(res *reconcile.Result) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, r := range p.interrupted {
		switch {
		case r == nil:
			continue
		case r.Status == reconcile.StatusDone:
			out = append(out, fmt.Sprintf("%s: %s finished", r.Stack, render.Label(r.Change)))
		case r.Kind == reconcile.ResourceMigration && strings.Contains(r.Session, "NO TRANSACTION"):
			out = append(out, fmt.Sprintf("%s: %s was cancelled part-way (NO TRANSACTION: check what it left before applying again)", r.Stack, render.Label(r.Change)))
		case r.Kind == reconcile.ResourceMigration:
			out = append(out, fmt.Sprintf("%s: %s was rolled back", r.Stack, render.Label(r.Change)))
		default:
			out = append(out, fmt.Sprintf("%s: %s %s", r.Stack, render.Label(r.Change), r.Status))
		}
	}
	n := 0
	for _, s := range res.Stacks {
		for _, c := range s.Changes {
			if c.Status == reconcile.StatusSkipped {
				n++
			}
		}
	}
	return append(out, fmt.Sprintf("%d change(s) not started", n))
}

func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return render.HumanBytes(int64(float64(n)/d.Seconds())) + "/s"
}
