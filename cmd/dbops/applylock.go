package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/lock"
	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/reconcile/redis"
	"github.com/amanat/dbops/spec"
)

// lockPoll is how often apply tries again for a stack lock another dbops
// holds.
const lockPoll = time.Second

// cliLockTTL bounds the Redis stack lock of a stack without Postgres, in
// case this process dies holding it.
const cliLockTTL = 10 * time.Minute

// lockStacks takes each stack's single-writer lock, the one `dbops run`
// takes to apply, and holds it until release: apply then plans and applies
// after, never interleaved with, an apply of the loop (which skips a stack
// whose lock it cannot take). When another process holds a lock, apply
// warns once, naming the holder (a `dbops run` puts back whatever is not
// committed to the repository), and waits for it. A stack whose lock could
// not be taken at all (server down, too many clients) is in unlocked:
// refuseUnlocked keeps it from being applied.
//
// With more than --hold-locks-max stacks on one PostgreSQL server, holding a
// session per stack could exhaust the server's connections: then nothing is
// locked here (lockEach), and Apply calls lockToApply for each stack.
func (c *applyCommand) lockStacks(ctx context.Context, stacks []spec.Stack) (release func(), unlocked map[string]error, err error) {
	c.lockEach = tooManyLocks(stacks, c.holdLocksMax)
	if c.lockEach {
		return func() {}, nil, nil
	}
	var held []lock.Lock
	release = func() {
		for _, l := range held {
			l.Release(context.WithoutCancel(ctx))
		}
	}
	unlocked = map[string]error{}
	for i := range stacks {
		l, err := c.waitLock(ctx, &stacks[i])
		if err != nil {
			release()
			return nil, nil, err
		}
		if nl, ok := l.(noLock); ok && nl.err != nil {
			unlocked[stacks[i].Metadata.Name] = nl.err
		}
		held = append(held, l)
	}
	return release, unlocked, nil
}

// tooManyLocks says whether more than max stacks share a PostgreSQL server.
func tooManyLocks(stacks []spec.Stack, max int) bool {
	per := map[string]int{}
	for i := range stacks {
		if pg := stacks[i].Spec.Postgres; pg != nil {
			server, _, _ := strings.Cut(postgres.Server(pg.URL), "/")
			per[server]++
			if per[server] > max {
				return true
			}
		}
	}
	return false
}

// lockToApply takes st's lock (waiting for another holder, as lockStacks
// does) just before Apply applies it, plans st again under the lock, and
// refuses it when anything moved since sp, the plan shown and approved.
func (c *applyCommand) lockToApply(ctx context.Context, st *spec.Stack, sp *reconcile.StackPlan) (func(), error) {
	l, err := c.waitLock(ctx, st)
	if err != nil {
		return nil, err
	}
	release := func() { l.Release(context.WithoutCancel(ctx)) }
	if nl, ok := l.(noLock); ok && nl.err != nil {
		return nil, notLocked(nl.err)
	}
	fresh := reconcile.PlanStacks(ctx, []spec.Stack{*st}, c.applyOptions()).Stacks[0]
	if moved := reconcile.StackMoved(sp, &fresh); len(moved) > 0 {
		release()
		return nil, fmt.Errorf("not applied: changed since the plan was shown (%s); plan again", strings.Join(moved, "; "))
	}
	return release, nil
}

// refuseUnlocked turns the changes of each stack whose lock could not be
// taken into a plan error: applied without it, they could interleave with
// a `dbops run` apply. (A stack whose server is down fails its plan anyway;
// this catches the lock session alone failing, e.g. "too many clients".)
func refuseUnlocked(plan *reconcile.Plan, unlocked map[string]error) {
	for i := range plan.Stacks {
		sp := &plan.Stacks[i]
		err, ok := unlocked[sp.Stack]
		if !ok || len(sp.Errors) > 0 || len(sp.Changes) == 0 {
			continue
		}
		sp.Errors = append(sp.Errors, notLocked(err))
	}
}

// notLocked is the error of a stack left unapplied for want of its lock.
func notLocked(err error) error {
	return fmt.Errorf("not applied: the stack lock could not be taken (%v); apply again when the server accepts the lock session", err)
}

func (c *applyCommand) waitLock(ctx context.Context, st *spec.Stack) (lock.Lock, error) {
	name := st.Metadata.Name
	host, _ := os.Hostname()
	holder := fmt.Sprintf("dbops-apply:%s-%d", host, os.Getpid())
	try := func() (lock.Lock, error) {
		if pg := st.Spec.Postgres; pg != nil {
			return lock.Postgres(ctx, pg.URL, name, c.connectTimeout)
		}
		r, err := redis.Open(st.Spec.Redis.URL, c.connectTimeout)
		if err != nil {
			return nil, err
		}
		l, err := lock.Redis(ctx, r, name, holder, cliLockTTL)
		if err != nil {
			r.Close()
			return nil, err
		}
		return closing{l, func() { r.Close() }}, nil
	}
	warned := false
	for {
		l, err := try()
		switch {
		case err == nil:
			if warned {
				fmt.Fprintf(c.human(), "stack %s: the other dbops is done; planning now.\n", name)
			} else if pg := st.Spec.Postgres; pg != nil {
				// No apply under way; a loop between cycles shows as its
				// pooled plan sessions, idle since its last cycle.
				if seen, _ := lock.IdleSessions(ctx, pg.URL, c.connectTimeout, c.loopIdle); seen != "" {
					fmt.Fprintf(c.stderr, "warning: stack %s looks reconciled by a `dbops run` (%s): it puts back whatever is not committed to the repository.\n", name, seen)
				}
			}
			return l, nil
		case errors.Is(err, lock.ErrOutOfMemory):
			return noLock{}, nil // as dbops run does: the apply is one idempotent CONFIG SET
		case !errors.Is(err, lock.ErrHeld):
			// No server to lock on: planning reports it, per stack, and
			// refuseUnlocked keeps whatever plans from being applied.
			return noLock{err: err}, nil
		}
		if !warned {
			warned = true
			fmt.Fprintf(c.stderr, "warning: stack %s is being applied by another dbops (%s), most likely the `dbops run` that reconciles it: "+
				"it puts back whatever is not committed to the repository. Waiting for it to finish (Ctrl-C to give up)...\n", name, c.holder(ctx, st))
		}
		select {
		case <-ctx.Done():
			return nil, exitError{code: 130, msg: fmt.Sprintf("gave up waiting for the stack lock of %s; nothing was changed", name)}
		case <-time.After(lockPoll):
		}
	}
}

// holder names who holds the stack's lock, as far as the server tells.
func (c *applyCommand) holder(ctx context.Context, st *spec.Stack) string {
	var h string
	var err error
	if pg := st.Spec.Postgres; pg != nil {
		h, err = lock.PostgresHolder(ctx, pg.URL, st.Metadata.Name, c.connectTimeout)
	} else if r, oerr := redis.Open(st.Spec.Redis.URL, c.connectTimeout); oerr == nil {
		h, err = lock.RedisHolder(ctx, r, st.Metadata.Name)
		r.Close()
	}
	if err != nil || h == "" {
		return "holder unknown"
	}
	return "lock held by " + h
}

type closing struct {
	lock.Lock
	close func()
}

func (l closing) Release(ctx context.Context) error {
	defer l.close()
	return l.Lock.Release(ctx)
}

// noLock stands for a lock not taken; err says why, when it matters.
type noLock struct{ err error }

func (noLock) Release(context.Context) error { return nil }
