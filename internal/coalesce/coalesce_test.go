package coalesce_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/coalesce"
)

type answer struct {
	n     int
	group int // the size of the group it was applied in
	err   error
}

// TestRequestsQueuedBehindAGroupAreAppliedTogether holds the only worker in its first group, queues
// more requests behind it, and checks that they are applied as one group, each answered on its own.
func TestRequestsQueuedBehindAGroupAreAppliedTogether(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	var mu sync.Mutex
	var groups []int
	g := coalesce.Start("test", 1, 8, func(_ context.Context, in []int) []answer {
		started <- struct{}{}
		<-release
		mu.Lock()
		groups = append(groups, len(in))
		mu.Unlock()
		out := make([]answer, len(in))
		for i, n := range in {
			out[i] = answer{n: n * 10, group: len(in)}
		}
		return out
	}, func(answer) bool { return false }, func(err error) answer { return answer{err: err} })

	first := make(chan answer, 1)
	go func() { a, _ := g.Do(context.Background(), 1); first <- a }()
	<-started
	var wg sync.WaitGroup
	rest := make([]answer, 5)
	for i := range rest {
		wg.Go(func() {
			a, ok := g.Do(context.Background(), i+2)
			require.True(t, ok)
			rest[i] = a
		})
	}
	// The five are queued while the worker holds the first group.
	require.Eventually(t, func() bool { return queued(g) == 5 }, 5*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	require.Equal(t, answer{n: 10, group: 1}, <-first)
	for i, a := range rest {
		require.Equal(t, answer{n: (i + 2) * 10, group: 5}, a, "each answered on its own, applied in one group")
	}
	g.Stop()
	require.Equal(t, []int{1, 5}, groups)
	_, ok := g.Do(context.Background(), 9)
	require.False(t, ok, "a stopped group takes nothing")
}

func queued[In, Out any](g *coalesce.Group[In, Out]) int { return g.QueueLen() }

// TestAFailedGroupIsAppliedAgainOneByOne: an answer that reports the group's failure sends its
// request through apply again, alone; the others keep their answers.
func TestAFailedGroupIsAppliedAgainOneByOne(t *testing.T) {
	t.Parallel()
	var calls [][]int
	g := coalesce.Start("test", 1, 8, func(_ context.Context, in []int) []answer {
		calls = append(calls, append([]int(nil), in...))
		out := make([]answer, len(in))
		for i, n := range in {
			if len(in) > 1 && n == 2 {
				out[i] = answer{err: errors.New("the group's transaction failed")}
				continue
			}
			out[i] = answer{n: n, group: len(in)}
		}
		return out
	}, func(a answer) bool { return a.err != nil }, func(err error) answer { return answer{err: err} })
	defer g.Stop()
	outs := g.Apply(context.Background(), []int{1, 2, 3})
	require.Equal(t, []answer{{n: 1, group: 3}, {n: 2, group: 1}, {n: 3, group: 3}}, outs)
	require.Equal(t, [][]int{{1, 2, 3}, {2}}, calls)
}

// TestACallerThatGivesUpIsAnsweredWithItsContextsError, and its queued request is still applied
// (a client that timed out sends it again and gets the stored answer).
func TestACallerThatGivesUpIsAnsweredWithItsContextsError(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	applied := make(chan int, 2)
	started := make(chan struct{}, 2)
	g := coalesce.Start("test", 1, 1, func(_ context.Context, in []int) []answer {
		started <- struct{}{}
		<-release
		applied <- in[0]
		return []answer{{n: in[0]}}
	}, func(answer) bool { return false }, func(err error) answer { return answer{err: err} })
	go g.Do(context.Background(), 1) //nolint:errcheck // holds the worker
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan answer, 1)
	<-started
	go func() { a, _ := g.Do(ctx, 7); done <- a }()
	require.Eventually(t, func() bool { return queued(g) == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	a := <-done
	require.ErrorIs(t, a.err, context.Canceled)
	close(release)
	g.Stop()
	require.Equal(t, 1, <-applied)
	require.Equal(t, 7, <-applied, "queued before its caller gave up: still applied")
}
