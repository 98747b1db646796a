package rebate_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/program"
	"github.com/rebate-ledger/rebate/internal/rebate"
)

func TestPoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("RedeemOldestFirstExactlyOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		putProgram(t, b, func(r *program.RulesJSON) {
			r.Points.SignupReferrer, r.Points.SignupReferee, r.Points.PerUnit, r.HoldPeriod = 100, 50, "1", "0s"
		})
		chain(t, b, "top", "ref", "a") // ref: 50 for joining (top invited it), 100 for inviting a (lots valid from now)
		paid(t, b, "e1", "o1", "a", "30.00", t0)
		// ref: 30 more points, valid from the order's release time t0, so they expire first.
		require.NoError(t, b.engine.Release(ctx, "o1"))
		require.Equal(t, "180", balance(t, b, "ref", "available", money.PTS))

		now := time.Now()
		r, replayed, err := b.engine.Redeem(ctx, "ref", rebate.Redemption{ID: "x1", Points: 110, Reason: "coupon"}, now)
		require.NoError(t, err)
		require.False(t, replayed)
		var got []int64
		for _, sp := range r.Spent {
			got = append(got, sp.Points)
		}
		require.Equal(t, []int64{30, 50, 30}, got, "released lot, then ref's own sign-up lot, then part of the invite lot")
		require.Equal(t, "70", balance(t, b, "ref", "available", money.PTS))
		redeemed, _ := b.ledger.Balance(ctx, ledger.PointsRedeemed, money.PTS)
		require.Equal(t, "-110", redeemed.String(), "points settled in the shop: a credit on the expense account")

		again, replayed, err := b.engine.Redeem(ctx, "ref", rebate.Redemption{ID: "x1", Points: 110, Reason: "coupon"}, now)
		require.NoError(t, err)
		require.True(t, replayed)
		require.Equal(t, r.EntryID, again.EntryID)
		_, _, err = b.engine.Redeem(ctx, "ref", rebate.Redemption{ID: "x1", Points: 111, Reason: "coupon"}, now)
		require.ErrorIs(t, err, rebate.ErrIdempotencyConflict)
		_, _, err = b.engine.Redeem(ctx, "ref", rebate.Redemption{ID: "x2", Points: 71}, now)
		require.ErrorIs(t, err, rebate.ErrInsufficientPoints)
		_, _, err = b.engine.Redeem(ctx, "ref", rebate.Redemption{ID: "x3", Points: 0}, now)
		require.ErrorIs(t, err, rebate.ErrValidation)
		_, _, err = b.engine.Redeem(ctx, "ghost", rebate.Redemption{ID: "x4", Points: 1}, now)
		require.ErrorIs(t, err, rebate.ErrNotFound)
		require.Equal(t, "70", balance(t, b, "ref", "available", money.PTS))
		verifyClean(t, b)
	})

	t.Run("NoSignUpPointsWithoutAnInviter", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		putProgram(t, b, func(r *program.RulesJSON) { r.Points.SignupReferrer, r.Points.SignupReferee = 100, 50 })
		chain(t, b, "alone")
		require.Equal(t, "0", balance(t, b, "alone", "available", money.PTS))
		chain(t, b, "alone", "friend") // alone invites friend: both parties of the referral
		require.Equal(t, "100", balance(t, b, "alone", "available", money.PTS))
		require.Equal(t, "50", balance(t, b, "friend", "available", money.PTS))
		verifyClean(t, b)
	})

	t.Run("ConcurrentRedemptionsNeverOverspend", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		putProgram(t, b, func(r *program.RulesJSON) { r.Points.SignupReferee = 100 })
		chain(t, b, "p", "m") // invited by p: sign-up points reward a referral
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for i := range 16 {
			wg.Go(func() {
				_, _, err := b.engine.Redeem(ctx, "m", rebate.Redemption{ID: fmt.Sprintf("r%d", i), Points: 30}, time.Now())
				if err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				} else {
					require.ErrorIs(t, err, rebate.ErrInsufficientPoints)
				}
			})
		}
		wg.Wait()
		require.Equal(t, 3, ok)
		require.Equal(t, "10", balance(t, b, "m", "available", money.PTS))
		verifyClean(t, b)
	})

	t.Run("ExpiryTakesWhatIsLeftOfOldLots", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		putProgram(t, b, func(r *program.RulesJSON) { r.Points.SignupReferee, r.Points.Validity = 100, "1h" })
		chain(t, b, "p", "m") // invited by p: sign-up points reward a referral, granted at the engine's now
		now := b.engine.Now()
		_, _, err := b.engine.Redeem(ctx, "m", rebate.Redemption{ID: "r1", Points: 40}, now)
		require.NoError(t, err)
		n, err := b.engine.ExpirePoints(ctx, now, 100)
		require.NoError(t, err)
		require.Zero(t, n, "nothing is due yet")
		n, err = b.engine.ExpirePoints(ctx, now.Add(2*time.Hour), 100)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, "0", balance(t, b, "m", "available", money.PTS))
		expired, _ := b.ledger.Balance(ctx, ledger.PointsExpired, money.PTS)
		require.Equal(t, "60", expired.String())
		n, err = b.engine.ExpirePoints(ctx, now.Add(3*time.Hour), 100)
		require.NoError(t, err)
		require.Zero(t, n, "a lot expires once")
		_, _, err = b.engine.Redeem(ctx, "m", rebate.Redemption{ID: "r2", Points: 1}, now.Add(2*time.Hour))
		require.ErrorIs(t, err, rebate.ErrInsufficientPoints)
		verifyClean(t, b)
	})

	t.Run("ExpiryOfTwoLotsNeverOverdrawsAfterAClawback", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		putProgram(t, b, func(r *program.RulesJSON) {
			r.Points.SignupReferrer, r.Points.SignupReferee, r.Points.PerUnit, r.HoldPeriod = 100, 50, "1", "0s"
		})
		chain(t, b, "top", "ref", "a") // ref: lots of 50 (joining) and 100 (inviting a); top: 100 (inviting ref)
		paid(t, b, "e1", "o1", "a", "40.00", t0)
		require.NoError(t, b.engine.Release(ctx, "o1")) // a released lot of 40, expiring first
		_, _, err := b.engine.Redeem(ctx, "ref", rebate.Redemption{ID: "x", Points: 40}, time.Now())
		require.NoError(t, err)
		// The refund claws the 40 released points back from available after they were spent:
		// available is now 110 while the two sign-up lots still hold 150.
		_, err = b.engine.Apply(ctx, refundEvent("r1", "o1", "y1", "40.00", t0.Add(time.Hour)))
		require.NoError(t, err)
		require.Equal(t, "110", balance(t, b, "ref", "available", money.PTS))
		n, err := b.engine.ExpirePoints(ctx, time.Now().Add(2*8760*time.Hour), 100)
		require.NoError(t, err)
		require.Equal(t, 4, n, "ref's two lots, a's and top's sign-up lots")
		require.Equal(t, "0", balance(t, b, "ref", "available", money.PTS))
		expired, _ := b.ledger.Balance(ctx, ledger.PointsExpired, money.PTS)
		require.Equal(t, "260", expired.String(), "ref's 110, a's 50 and top's 100")
		verifyClean(t, b)
	})

	t.Run("ClawbackAfterReleaseShrinksThePointsLot", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		putProgram(t, b, func(r *program.RulesJSON) { r.Points.PerUnit = "1" })
		chain(t, b, "ref", "a")
		paid(t, b, "e1", "o1", "a", "40.00", t0)
		require.NoError(t, b.engine.Release(ctx, "o1"))
		require.Equal(t, "40", balance(t, b, "ref", "available", money.PTS))
		_, err := b.engine.Apply(ctx, refundEvent("r1", "o1", "x1", "10.00", t0.Add(time.Hour)))
		require.NoError(t, err)
		require.Equal(t, "30", balance(t, b, "ref", "available", money.PTS))
		_, _, err = b.engine.Redeem(ctx, "ref", rebate.Redemption{ID: "y", Points: 31}, time.Now())
		require.ErrorIs(t, err, rebate.ErrInsufficientPoints, "the lot shrank with the clawback")
		_, _, err = b.engine.Redeem(ctx, "ref", rebate.Redemption{ID: "y", Points: 30}, time.Now())
		require.NoError(t, err)
		verifyClean(t, b)
	})
}
