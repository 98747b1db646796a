package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
)

// walletProgram is the default program with the given withdrawal rules and time zone.
func walletProgram(tz, withdrawal string) string {
	return `{"currency":"CNY","hold_period":"168h","rounding":"down","level_rates":["0.05","0.02","0.01"],
		"tiers":[],"first_order_bonus":"0.00","milestones":[],"max_rebate_ratio":"0.15",
		"points":{"per_unit":"0","signup_referrer":100,"signup_referee":50,"validity":"8760h"},
		"timezone":"` + tz + `","withdrawal":` + withdrawal + `}`
}

const defaultWithdrawal = `{"min":"10.00","max":"5000.00","daily_count":3,"daily_amount":"10000.00",
	"monthly_amount":"50000.00","fee_rate":"0.01","fee_min":"1.00","review_above":"2000.00"}`

func (b *testBundle) putProgram(t *testing.T, body string) {
	t.Helper()
	status, p, _ := b.do(t, "PUT", "/v1/program", b.operator, body)
	require.Equal(t, http.StatusCreated, status, p)
}

func (b *testBundle) member(t *testing.T, id string) {
	t.Helper()
	status, m, _ := b.do(t, "POST", "/v1/members", b.shop, `{"id":"`+id+`"}`)
	require.Equal(t, http.StatusCreated, status, m)
}

// fund gives a member available money the way a release does: accrued to held, then held →
// available.
func (b *testBundle) fund(t *testing.T, member, amount string) {
	t.Helper()
	a := money.MustParse(amount, money.CNY)
	key := fmt.Sprintf("fund:%s:%d", member, time.Now().UnixNano())
	post(t, b.ledger, key, member, amount)
	_, err := b.ledger.PostTx(context.Background(), ledger.EntryRequest{Key: key + ":release", Kind: "release", OccurredAt: time.Now(),
		Postings: []ledger.PostingRequest{
			{Account: ledger.MemberAccount(member, "held"), Side: ledger.Debit, Amount: a},
			{Account: ledger.MemberAccount(member, "available"), Side: ledger.Credit, Amount: a},
		}})
	require.NoError(t, err)
}

func (b *testBundle) balance(t *testing.T, member, bucket string) string {
	t.Helper()
	a, err := b.ledger.Balance(context.Background(), ledger.MemberAccount(member, bucket), money.CNY)
	if err != nil {
		return "none"
	}
	return a.String()
}

func (b *testBundle) withdraw(t *testing.T, key, member, id, amount string) (int, map[string]any) {
	t.Helper()
	status, body, _ := b.do(t, "POST", "/v1/members/"+member+"/withdrawals", key,
		`{"id":"`+id+`","amount":"`+amount+`","currency":"CNY","destination":{"type":"bank","account":"6222020012345678","name":"Li Lei"}}`)
	return status, body
}

// requireSound checks the journal: every balance equals its postings and every currency balances.
func (b *testBundle) requireSound(t *testing.T) {
	t.Helper()
	rep, err := b.ledger.Verify(context.Background())
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.Problems)
	_, totals, err := b.ledger.TrialBalance(context.Background(), nil)
	require.NoError(t, err)
	for _, tot := range totals {
		require.True(t, tot.Debit.Equal(tot.Credit), "%s: %s != %s", tot.Currency, tot.Debit, tot.Credit)
	}
}

func (b *testBundle) entries(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT count(*) FROM entries").Scan(&n))
	return n
}

func TestConcurrentWithdrawalsNeverOverdraw(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		dailyCount int
		accepted   int
		refusal    string
	}{
		{"DailyCountBinds", 3, 3, "limit_exceeded"},
		{"BalanceBinds", 10, 5, "insufficient_funds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.putProgram(t, walletProgram("UTC", fmt.Sprintf(`{"min":"10.00","max":"5000.00","daily_count":%d,"daily_amount":"10000.00",
				"monthly_amount":"50000.00","fee_rate":"0.01","fee_min":"1.00","review_above":"2000.00"}`, tc.dailyCount)))
			b.member(t, "m")
			b.fund(t, "m", "500.00") // covers five withdrawals of 100.00
			var wg sync.WaitGroup
			var ok, refused atomic.Int32
			codes := make(chan any, 32)
			for i := range 32 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					status, body := b.withdraw(t, b.shop, "m", fmt.Sprintf("w%d", i), "100.00")
					if status == http.StatusCreated {
						ok.Add(1)
						return
					}
					refused.Add(1)
					codes <- body["code"]
				}()
			}
			wg.Wait()
			close(codes)
			require.EqualValues(t, tc.accepted, ok.Load())
			require.EqualValues(t, 32-tc.accepted, refused.Load())
			for c := range codes {
				require.Equal(t, tc.refusal, c)
			}
			require.Equal(t, fmt.Sprintf("%d.00", 500-100*tc.accepted), b.balance(t, "m", "available"))
			require.Equal(t, fmt.Sprintf("%d.00", 100*tc.accepted), b.balance(t, "m", "withdrawing"))
			b.requireSound(t)
		})
	}
}

// TestWithdrawalLimitsAtTheirBoundaries stands the clock at the edges of a day and a month in the
// program's time zone (Asia/Shanghai, UTC+8).
func TestWithdrawalLimitsAtTheirBoundaries(t *testing.T) {
	t.Parallel()
	sh, err := time.LoadLocation("Asia/Shanghai")
	require.NoError(t, err)
	b := setupWith(t, setupOpts{now: time.Date(2026, 12, 6, 23, 59, 59, 0, sh)})
	b.putProgram(t, walletProgram("Asia/Shanghai", `{"min":"10.00","max":"250.00","daily_count":2,"daily_amount":"300.00",
		"monthly_amount":"500.00","fee_rate":"0.01","fee_min":"1.00","review_above":"2000.00"}`))
	b.member(t, "m")
	b.fund(t, "m", "5000.00")

	expect := func(id, amount string, status int, code, limit, remaining string) map[string]any {
		t.Helper()
		got, body := b.withdraw(t, b.shop, "m", id, amount)
		require.Equal(t, status, got, "%s %s: %v", id, amount, body)
		if code != "" {
			require.Equal(t, code, body["code"], body)
		}
		if limit != "" {
			require.Equal(t, limit, body["limit"], body)
			require.Equal(t, remaining, body["remaining"], body)
		}
		return body
	}
	// 2026-12-06 23:59:59 in Shanghai.
	w := expect("min", "10.00", 201, "", "", "")
	require.Equal(t, "1.00", w["fee"])
	require.Equal(t, "9.00", w["net"])
	expect("below", "9.99", 422, "below_minimum", "", "")
	expect("too-precise", "10.001", 400, "validation_failed", "", "")
	expect("above", "250.01", 422, "above_maximum", "", "")
	expect("second", "200.00", 201, "", "", "")
	expect("third", "10.00", 422, "limit_exceeded", "daily_count", "0")

	// 2026-12-07 00:00:00 in Shanghai: a new day, the same month (210.00 used).
	b.clock.Set(time.Date(2026, 12, 7, 0, 0, 0, 0, sh))
	expect("d2-1", "100.00", 201, "", "", "")
	expect("d2-day", "200.01", 422, "limit_exceeded", "daily_amount", "200.00")
	expect("d2-month", "200.00", 422, "limit_exceeded", "monthly_amount", "190.00")
	expect("d2-2", "190.00", 201, "", "", "")

	// A cancelled withdrawal no longer counts.
	status, body, _ := b.do(t, "POST", "/v1/withdrawals/d2-2/cancel", b.shop, "")
	require.Equal(t, 200, status, body)
	expect("d2-3", "190.00", 201, "", "", "")

	// 2026-12-31 23:59:59 then 2027-01-01 00:00:00: the month's 500.00 is spent, then renewed.
	b.clock.Set(time.Date(2026, 12, 31, 23, 59, 59, 0, sh))
	expect("m1-last", "10.00", 422, "limit_exceeded", "monthly_amount", "0.00")
	b.clock.Set(time.Date(2027, 1, 1, 0, 0, 0, 0, sh))
	expect("m2-first", "250.00", 201, "", "", "")
	b.requireSound(t)
}

