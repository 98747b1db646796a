package wallet_test

import (
	"context"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/wallet"
)

func (b *bundle) fund(t *testing.T, member, amount string) {
	t.Helper()
	_, err := b.run(context.Background(), step{kind: "fund", id: "fund-" + member + "-" + amount, member: member, amount: d(amount)})
	require.NoError(t, err)
}

func (b *bundle) balance(t *testing.T, member, bucket string) string {
	t.Helper()
	a, err := b.ledger.Balance(context.Background(), ledger.MemberAccount(member, bucket), money.CNY)
	require.NoError(t, err)
	return a.String()
}

func req(id, member, amount string) wallet.WithdrawalRequest {
	return withdrawalOf(step{id: id, member: member, amount: decimal.RequireFromString(amount)})
}

// TestRequestManyAnswersEachAsIfAlone sends one group with every kind of answer in it: each request
// is decided after the ones before it (a member's money and limits are used up within the group), a
// refusal stops nothing else, and an id that comes back replays or conflicts with the first.
func TestRequestManyAnswersEachAsIfAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBundle(t)
	defer b.pool.Close()
	b.fund(t, "a", "250.00")
	b.fund(t, "b", "1000.00")
	b.fund(t, "c", "1000.00")

	bad := req("w9", "b", "1.00")
	bad.Amount = "1,00"
	outs := b.wallet.RequestMany(ctx, []wallet.WithdrawalRequest{
		req("w1", "a", "100.00"), // approved
		req("w2", "a", "100.00"), // approved: a has 50.00 left
		req("w3", "a", "100.00"), // insufficient_funds
		req("w4", "b", "200.00"), // above review_above: pending_review
		req("w5", "nobody", "100.00"),
		req("w6", "b", "5.00"),   // below_minimum
		req("w1", "a", "100.00"), // the same request again: replays w1
		req("w2", "a", "120.00"), // w2 with another body
		bad,                      // malformed
		req("w7", "c", "100.00"), // c's 1st, 2nd and 3rd of the day, then the daily count binds
		req("w8", "c", "100.00"),
		req("w10", "c", "100.00"),
		req("w11", "c", "100.00"),
	})
	want := []struct {
		status string
		code   apperr.Code
	}{
		{wallet.Approved, ""}, {wallet.Approved, ""}, {"", apperr.InsufficientFunds}, {wallet.PendingReview, ""},
		{"", apperr.NotFound}, {"", apperr.BelowMinimum}, {wallet.Approved, ""}, {"", apperr.IdempotencyConflict},
		{"", apperr.Validation}, {wallet.Approved, ""}, {wallet.Approved, ""}, {wallet.Approved, ""}, {"", apperr.LimitExceeded},
	}
	require.Len(t, outs, len(want))
	for i, w := range want {
		if w.code != "" {
			require.True(t, apperr.Is(outs[i].Err, w.code), "request %d: want %s, got %v", i, w.code, outs[i].Err)
			continue
		}
		require.NoError(t, outs[i].Err, "request %d", i)
		require.Equal(t, w.status, outs[i].Value.Status, "request %d", i)
	}
	require.True(t, outs[6].Replayed, "the repeat of w1 replays it")
	require.False(t, outs[0].Replayed)
	require.Equal(t, outs[0].Value, outs[6].Value, "a replay answers what the first answered")

	require.Equal(t, "50.00", b.balance(t, "a", "available"))
	require.Equal(t, "200.00", b.balance(t, "a", "withdrawing"))
	require.Equal(t, "800.00", b.balance(t, "b", "available"))
	require.Equal(t, "700.00", b.balance(t, "c", "available"))

	// Up to the repeated id, the accepted requests were written by one transaction.
	var txids int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(DISTINCT txid) FROM entries
		WHERE idempotency_key IN ('withdrawal:w1', 'withdrawal:w2', 'withdrawal:w4')`).Scan(&txids))
	require.Equal(t, 1, txids)
	rep, err := b.ledger.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.Problems)
}

// TestAGroupThatFailsAsAWholeIsDecidedAgainAlone: a journal key taken behind the wallet's back
// fails the group's transaction; each request is then decided alone, so the neighbour is accepted.
func TestAGroupThatFailsAsAWholeIsDecidedAgainAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBundle(t)
	defer b.pool.Close()
	b.fund(t, "a", "500.00")
	b.fund(t, "b", "500.00")
	// An entry under the key the wallet would give w-taken's entry, with other postings.
	_, err := b.run(ctx, step{kind: "fund", id: "withdrawal:w-taken", member: "c", amount: d("1.00")})
	require.NoError(t, err)

	outs := b.wallet.RequestMany(ctx, []wallet.WithdrawalRequest{req("w-taken", "a", "100.00"), req("w-free", "b", "100.00")})
	require.Error(t, outs[0].Err, "its entry's key is taken")
	require.NoError(t, outs[1].Err, "not failed by its neighbour")
	require.Equal(t, wallet.Approved, outs[1].Value.Status)
	require.Equal(t, "500.00", b.balance(t, "a", "available"))
	require.Equal(t, "400.00", b.balance(t, "b", "available"))
}

// TestCoalescedRequestsOfOneMemberNeverOverdraw: requests of one member queued at once are grouped
// by the coalescer, and still no more is accepted than the balance and the daily count allow.
func TestCoalescedRequestsOfOneMemberNeverOverdraw(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBundle(t)
	defer b.pool.Close()
	defer b.wallet.Coalesce(2, 8)()
	b.fund(t, "a", "250.00")  // two of 100.00
	b.fund(t, "b", "5000.00") // three a day (the program's daily count)
	groupsBefore, requestsBefore := coalescedWithdrawals(t)
	var wg sync.WaitGroup
	outs := make([]wallet.RequestOutcome, 24)
	for i := range outs {
		wg.Go(func() {
			member := []string{"a", "b"}[i%2]
			w, replayed, err := b.wallet.Request(ctx, req("w"+string(rune('A'+i)), member, "100.00"))
			outs[i] = wallet.RequestOutcome{Value: w, Replayed: replayed, Err: err}
		})
	}
	wg.Wait()
	accepted := map[string]int{}
	for i, o := range outs {
		member := []string{"a", "b"}[i%2]
		if o.Err != nil {
			want := map[string]apperr.Code{"a": apperr.InsufficientFunds, "b": apperr.LimitExceeded}[member]
			require.True(t, apperr.Is(o.Err, want), "%s: want %s, got %v", member, want, o.Err)
			continue
		}
		accepted[member]++
	}
	require.Equal(t, map[string]int{"a": 2, "b": 3}, accepted)
	require.Equal(t, "50.00", b.balance(t, "a", "available"))
	require.Equal(t, "4700.00", b.balance(t, "b", "available"))

	// Every request went through the coalescer, in as many groups as the metric says (no other
	// test of this package coalesces withdrawals).
	groups, requests := coalescedWithdrawals(t)
	require.EqualValues(t, len(outs), requests-requestsBefore)
	require.LessOrEqual(t, groups-groupsBefore, uint64(len(outs)))
	require.Positive(t, groups-groupsBefore)
}

// coalescedWithdrawals reads rebate_coalesced_group_size{what="withdrawals"}: how many groups,
// and how many requests in all.
func coalescedWithdrawals(t *testing.T) (groups uint64, requests float64) {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "rebate_coalesced_group_size" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "what" && l.GetValue() == "withdrawals" {
					return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
				}
			}
		}
	}
	return 0, 0
}
