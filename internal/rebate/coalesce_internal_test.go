package rebate

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/pgtest"
)

// TestCoalescerAppliesAFailedGroupOneByOne: when a group's transaction fails as a whole (here: a
// stored program that cannot be read is in force for one of its events), each event is applied
// again alone, so its neighbour is not failed with it.
func TestCoalescerAppliesAFailedGroupOneByOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t)
	e := NewEngine(pool, ledger.New(pool))
	e.SetScheduler(func(context.Context, pgx.Tx, []Release) error { return nil })
	for _, r := range []Registration{{ID: "ref"}, {ID: "buyer", ReferrerID: "ref"}} {
		_, _, err := e.Register(ctx, r)
		require.NoError(t, err)
	}
	broken := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	// Written behind the API's validation: the engine cannot parse it.
	_, err := pool.Exec(ctx, `INSERT INTO programs (effective_at, rules) VALUES ($1, '{"currency": "XXX"}')`, broken)
	require.NoError(t, err)
	event := func(id string, at time.Time) Event {
		return Event{ID: id, Type: OrderPaid, OccurredAt: at,
			Data: []byte(fmt.Sprintf(`{"order_id":"o-%s","member_id":"buyer","amount":"10.00","currency":"CNY"}`, id))}
	}

	// Together, in one transaction, both fail: the group cannot read the program in force.
	outs := e.ApplyBatch(ctx, []Event{event("a", broken.Add(-time.Hour)), event("b", broken.Add(time.Hour))})
	require.Error(t, outs[0].Err)
	require.Error(t, outs[1].Err)
	require.False(t, refusal(outs[0].Err), "not a refusal of one event: %v", outs[0].Err)

	g := e.coalescer(1, 8)
	defer g.Stop()
	outs = g.Apply(ctx, []Event{event("c", broken.Add(-time.Hour)), event("d", broken.Add(time.Hour))})
	ob, oa := outs[0], outs[1]
	require.NoError(t, ob.Err, "applied alone once the group failed")
	require.Equal(t, "applied", ob.Result.Status)
	require.Error(t, oa.Err, "its own program is still unreadable")
}
