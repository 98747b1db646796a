// Package coalesce is group commit at the application level: requests that arrive while others are
// being applied queue, and a few workers apply whatever has queued as one group, in one
// transaction. Under load a transaction costs about the same for one request or twenty (round
// trips, the commit's WAL flush, statement triggers and plan start-up are paid per statement, not
// per row), so the fixed part is shared. There is no timer: an idle service applies a request at
// once, a group is simply whatever queued while the previous one was in flight.
//
// Each request is still answered on its own. The apply function answers every request of a group
// (refusing one alone when it is the request's own fault); when it reports that the group's
// transaction failed as a whole, each of its requests is applied again alone, so no request fails
// because of a neighbour it was grouped with. Used by the rebate engine (single events, ADR 0006)
// and the wallet (withdrawals, ADR 0016).
package coalesce

import (
	"context"
	"sync"
	"time"

	"github.com/rebate-ledger/rebate/internal/metrics"
)

// Timeout bounds one group's work, its retries included.
const Timeout = time.Minute

// Group queues requests of type In and applies them in groups, answering each with an Out.
type Group[In, Out any] struct {
	name     string
	apply    func(ctx context.Context, in []In) []Out
	failed   func(Out) bool
	max      int
	queue    chan *queued[In, Out]
	wg       sync.WaitGroup
	mu       sync.RWMutex // guards shut against a send on a closed queue
	shut     bool
	canceled func(error) Out
}

type queued[In, Out any] struct {
	ctx  context.Context
	in   In
	done chan Out
}

// Start starts workers that apply up to max queued requests at a time with apply, which must
// answer every request of its slice, in order; name labels the groups' sizes in the metrics
// (rebate_coalesced_group_size). failed reports an answer that is the group's
// failure rather than the request's own (its request is then applied again alone); canceled is
// the answer to a caller whose context ended before its answer came.
func Start[In, Out any](name string, workers, max int, apply func(ctx context.Context, in []In) []Out,
	failed func(Out) bool, canceled func(error) Out) *Group[In, Out] {
	workers, max = atLeastOne(workers), atLeastOne(max)
	g := &Group[In, Out]{name: name, apply: apply, failed: failed, canceled: canceled, max: max,
		queue: make(chan *queued[In, Out], workers*max)}
	for range workers {
		g.wg.Go(g.work)
	}
	return g
}

func atLeastOne(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// Do queues in and waits for its answer. ok is false when the group is stopped (the caller then
// applies the request itself).
func (g *Group[In, Out]) Do(ctx context.Context, in In) (out Out, ok bool) {
	q := &queued[In, Out]{ctx: ctx, in: in, done: make(chan Out, 1)}
	g.mu.RLock()
	if g.shut {
		g.mu.RUnlock()
		return out, false
	}
	select {
	case g.queue <- q:
		g.mu.RUnlock()
	case <-ctx.Done():
		g.mu.RUnlock()
		return g.canceled(ctx.Err()), true
	}
	// Once queued, the request is applied even if the caller gives up waiting: a client that timed
	// out sends it again and gets the stored answer.
	select {
	case o := <-q.done:
		return o, true
	case <-ctx.Done():
		return g.canceled(ctx.Err()), true
	}
}

// QueueLen is how many requests wait for a worker.
func (g *Group[In, Out]) QueueLen() int { return len(g.queue) }

// Stop waits for the queued requests to be applied; Do answers ok=false from then on.
func (g *Group[In, Out]) Stop() {
	g.mu.Lock()
	if !g.shut {
		g.shut = true
		close(g.queue)
	}
	g.mu.Unlock()
	g.wg.Wait()
}

func (g *Group[In, Out]) work() {
	for first := range g.queue {
		group := []*queued[In, Out]{first}
	fill:
		for len(group) < g.max {
			select {
			case q, ok := <-g.queue:
				if !ok {
					break fill
				}
				group = append(group, q)
			default:
				break fill
			}
		}
		g.run(group)
	}
}

// run applies one group. Its transaction must not die with one caller's request, nor outlive all
// of them for nothing; a caller that gave up still gets its request applied (see Do).
func (g *Group[In, Out]) run(group []*queued[In, Out]) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(group[0].ctx), Timeout)
	defer cancel()
	ins := make([]In, len(group))
	for i, q := range group {
		ins[i] = q.in
	}
	metrics.Coalesced(g.name, len(ins))
	outs := g.Apply(ctx, ins)
	for i, o := range outs {
		group[i].done <- o
	}
}

// Apply applies ins as one group now, and each again alone if the group failed as a whole.
func (g *Group[In, Out]) Apply(ctx context.Context, ins []In) []Out {
	outs := g.apply(ctx, ins)
	if len(ins) > 1 {
		for i, o := range outs {
			if g.failed(o) {
				outs[i] = g.apply(ctx, ins[i:i+1])[0]
			}
		}
	}
	return outs
}
