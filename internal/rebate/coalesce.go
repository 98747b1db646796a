package rebate

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Coalescing applies single events that arrive while others are being applied together, in one
// transaction per group (group commit at the application level): under load a transaction costs
// the same for one event or twenty, and the fixed part (round trips, commit, River's insert, the
// balance statement) dominates one event's cost. Each event is still applied exactly once and
// answered on its own: a refused event is refused alone (ApplyBatch), and when a group's
// transaction fails as a whole, its events are applied again one by one, so an event can never
// fail because of a neighbour it was grouped with. An idle engine applies an event at once: there
// is no timer, a group is simply whatever queued while the previous one was in flight.
//
// ADR 0006 has the measurements and the alternatives.
type coalescer struct {
	e     *Engine
	max   int
	queue chan *queued
	wg    sync.WaitGroup
	mu    sync.RWMutex // guards closed against a send on a closed queue
	shut  bool
}

// groupTimeout bounds one group's work (its retries included).
const groupTimeout = time.Minute

type queued struct {
	ctx  context.Context
	ev   Event
	done chan Outcome
}

// Coalesce makes Apply group concurrent events: workers transactions at a time, each of at most
// max events. The returned stop waits for the queued events to be applied; Apply then applies
// events alone again.
func (e *Engine) Coalesce(workers, max int) (stop func()) {
	if workers < 1 {
		workers = 1
	}
	if max < 1 {
		max = 1
	}
	c := &coalescer{e: e, max: max, queue: make(chan *queued, workers*max)}
	for range workers {
		c.wg.Go(c.work)
	}
	e.coalesce.Store(c)
	return func() {
		e.coalesce.CompareAndSwap(c, nil)
		c.mu.Lock()
		c.shut = true
		close(c.queue)
		c.mu.Unlock()
		c.wg.Wait()
	}
}

// submit queues an event and waits for its outcome; ok is false when the coalescer is stopped.
func (c *coalescer) submit(ctx context.Context, ev Event) (Outcome, bool) {
	q := &queued{ctx: ctx, ev: ev, done: make(chan Outcome, 1)}
	c.mu.RLock()
	if c.shut {
		c.mu.RUnlock()
		return Outcome{}, false
	}
	select {
	case c.queue <- q:
		c.mu.RUnlock()
	case <-ctx.Done():
		c.mu.RUnlock()
		return Outcome{Err: ctx.Err()}, true
	}
	// Once queued, the event is applied even if the caller gives up waiting: a client that timed out
	// sends the event again and gets the stored answer.
	select {
	case o := <-q.done:
		return o, true
	case <-ctx.Done():
		return Outcome{Err: ctx.Err()}, true
	}
}

func (c *coalescer) work() {
	for first := range c.queue {
		group := []*queued{first}
	fill:
		for len(group) < c.max {
			select {
			case q, ok := <-c.queue:
				if !ok {
					break fill
				}
				group = append(group, q)
			default:
				break fill
			}
		}
		c.apply(group)
	}
}

func (c *coalescer) apply(group []*queued) {
	// The group's transaction must not die with one caller's request, nor outlive all of them for
	// nothing; a caller that gave up still gets its event applied (see submit).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(group[0].ctx), groupTimeout)
	defer cancel()
	evs := make([]Event, len(group))
	for i, q := range group {
		evs[i] = q.ev
	}
	outs := c.e.ApplyBatch(ctx, evs)
	for i, o := range outs {
		if o.Err != nil && len(group) > 1 && !refusal(o.Err) {
			o = c.e.ApplyBatch(ctx, evs[i:i+1])[0]
		}
		group[i].done <- o
	}
}

// refusal reports whether err is the engine refusing one event (its own fault), as opposed to the
// group's transaction failing.
func refusal(err error) bool {
	for _, target := range []error{ErrValidation, ErrUnknownMember, ErrUnsupportedCurrency, ErrRefundExceedsOrder,
		ErrIdempotencyConflict, ErrNotFound} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
