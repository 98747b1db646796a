package httpapi_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/page"
	"github.com/rebate-ledger/rebate/internal/wallet"
	"github.com/rebate-ledger/rebate/internal/wallet/simulated"
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

func (b *testBundle) entries(t testing.TB) int {
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
		alone      bool // each request in its own transaction (serve --coalesce-workers 0)
	}{
		{"DailyCountBinds", 3, 3, "limit_exceeded", false},
		{"BalanceBinds", 10, 5, "insufficient_funds", false},
		{"DailyCountBindsEachAlone", 3, 3, "limit_exceeded", true},
		{"BalanceBindsEachAlone", 10, 5, "insufficient_funds", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupWith(t, setupOpts{alone: tc.alone})
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

func TestWithdrawalReviewRejectAndCancel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.putProgram(t, walletProgram("UTC", `{"min":"10.00","max":"5000.00","daily_count":10,"daily_amount":"10000.00",
		"monthly_amount":"50000.00","fee_rate":"0.01","fee_min":"1.00","review_above":"100.00"}`))
	b.member(t, "m")
	b.fund(t, "m", "1000.00")

	act := func(key, id, action, body string) (int, map[string]any, http.Header) {
		t.Helper()
		return b.do(t, "POST", "/v1/withdrawals/"+id+"/"+action, key, body)
	}

	t.Run("ApproveThenCancel", func(t *testing.T) {
		status, w := b.withdraw(t, b.shop, "m", "big", "150.00")
		require.Equal(t, 201, status, w)
		require.Equal(t, "pending_review", w["status"])
		require.Equal(t, "1.50", w["fee"])

		status, body, hdr := act(b.shop, "big", "approve", "")
		require.Equal(t, 403, status, body)
		status, body, hdr = act(b.operator, "big", "approve", `{"reason":"looks fine"}`)
		require.Equal(t, 200, status, body)
		require.Equal(t, "approved", body["status"])
		require.Empty(t, hdr.Get("Idempotent-Replayed"))
		status, again, hdr := act(b.operator, "big", "approve", `{"reason":"looks fine"}`)
		require.Equal(t, 200, status, again)
		require.Equal(t, "true", hdr.Get("Idempotent-Replayed"))
		require.Equal(t, body, again)
		status, body, _ = act(b.operator, "big", "reject", `{"reason":"changed my mind"}`)
		require.Equal(t, 409, status, body)
		require.Equal(t, "invalid_state", body["code"])

		before := b.balance(t, "m", "available")
		status, body, _ = act(b.shop, "big", "cancel", "")
		require.Equal(t, 200, status, body)
		require.Equal(t, "cancelled", body["status"])
		require.Equal(t, "1000.00", b.balance(t, "m", "available"), "was %s", before)
		require.Equal(t, "0.00", b.balance(t, "m", "withdrawing"))
		status, _, hdr = act(b.shop, "big", "cancel", "")
		require.Equal(t, 200, status)
		require.Equal(t, "true", hdr.Get("Idempotent-Replayed"))
		for _, a := range []string{"approve", "reject"} {
			status, body, _ = act(b.operator, "big", a, "")
			require.Equal(t, 409, status, body)
			require.Equal(t, "invalid_state", body["code"], a)
		}
	})

	t.Run("RejectReturnsTheMoney", func(t *testing.T) {
		status, w := b.withdraw(t, b.shop, "m", "big2", "200.00")
		require.Equal(t, 201, status, w)
		require.Equal(t, "800.00", b.balance(t, "m", "available"))
		status, body, _ := act(b.operator, "big2", "reject", `{"reason":"documents missing"}`)
		require.Equal(t, 200, status, body)
		require.Equal(t, "rejected", body["status"])
		require.Equal(t, "documents missing", body["reason"])
		require.Equal(t, "1000.00", b.balance(t, "m", "available"))
		status, body, _ = act(b.operator, "big2", "reject", `{"reason":"another reason"}`)
		require.Equal(t, 409, status, body)
		require.Equal(t, "idempotency_conflict", body["code"])
		for _, a := range []string{"approve", "cancel"} {
			key := b.operator
			if a == "cancel" {
				key = b.shop
			}
			status, body, _ = act(key, "big2", a, "")
			require.Equal(t, 409, status, body)
			require.Equal(t, "invalid_state", body["code"], a)
		}
	})

	t.Run("NoCancelOnceInABatch", func(t *testing.T) {
		status, w := b.withdraw(t, b.shop, "m", "small", "50.00")
		require.Equal(t, 201, status, w)
		require.Equal(t, "approved", w["status"])
		require.Nil(t, w["batch_id"])
		status, body, _ := act(b.operator, "small", "approve", "")
		require.Equal(t, 409, status, body)
		status, cut, _ := b.do(t, "POST", "/v1/payout-batches", b.operator, `{"currency":"CNY"}`)
		require.Equal(t, 201, status, cut)
		status, body, _ = act(b.shop, "small", "cancel", "")
		require.Equal(t, 409, status, body)
		require.Equal(t, "invalid_state", body["code"])
		require.Contains(t, body["detail"], "in batch")
		_, got, _ := b.do(t, "GET", "/v1/withdrawals/small", b.shop, "")
		require.Equal(t, cut["batch"].(map[string]any)["id"], got["batch_id"])
	})

	t.Run("QueueAndLists", func(t *testing.T) {
		status, w := b.withdraw(t, b.shop, "m", "queued", "120.00")
		require.Equal(t, 201, status, w)
		status, q, _ := b.do(t, "GET", "/v1/withdrawals?status=pending_review", b.operator, "")
		require.Equal(t, 200, status, q)
		items := q["items"].([]any)
		require.Len(t, items, 1)
		require.Equal(t, "queued", items[0].(map[string]any)["id"])
		status, q, _ = b.do(t, "GET", "/v1/members/m/withdrawals?limit=2", b.shop, "")
		require.Equal(t, 200, status, q)
		require.Len(t, q["items"], 2)
		var ids []any
		for q["next_cursor"] != "" {
			for _, it := range q["items"].([]any) {
				ids = append(ids, it.(map[string]any)["id"])
			}
			status, q, _ = b.do(t, "GET", "/v1/members/m/withdrawals?limit=2&cursor="+q["next_cursor"].(string), b.shop, "")
			require.Equal(t, 200, status, q)
		}
		for _, it := range q["items"].([]any) {
			ids = append(ids, it.(map[string]any)["id"])
		}
		// Oldest first; these share the test clock's instant, so their ids order them.
		require.Equal(t, []any{"big", "big2", "queued", "small"}, ids)
		status, q, _ = b.do(t, "GET", "/v1/withdrawals?status=bogus", b.operator, "")
		require.Equal(t, 400, status, q)
		status, q, _ = b.do(t, "GET", "/v1/members/nobody/withdrawals", b.shop, "")
		require.Equal(t, 404, status, q)
	})
	b.requireSound(t)
}

func TestDebtBlocksWithdrawalsUntilAReleaseRepaysIt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.member(t, "m")
	a := money.MustParse("30.00", money.CNY)
	// A clawback after release: the member's available goes below zero (a debt).
	_, err := b.ledger.PostTx(context.Background(), ledger.EntryRequest{Key: "claw", Kind: "clawback", OccurredAt: time.Now(),
		AllowOverdraft: []string{ledger.MemberAccount("m", "available")},
		Postings: []ledger.PostingRequest{
			{Account: ledger.MemberAccount("m", "available"), Side: ledger.Debit, Amount: a},
			{Account: ledger.RebateExpense, Side: ledger.Credit, Amount: a},
		}})
	require.NoError(t, err)
	status, body := b.withdraw(t, b.shop, "m", "w1", "10.00")
	require.Equal(t, 422, status, body)
	require.Equal(t, "outstanding_debt", body["code"])
	require.Contains(t, body["detail"], "30.00")
	b.fund(t, "m", "50.00") // a release repays the debt first: 20.00 left
	require.Equal(t, "20.00", b.balance(t, "m", "available"))
	status, body = b.withdraw(t, b.shop, "m", "w1", "20.01")
	require.Equal(t, 422, status, body)
	require.Equal(t, "insufficient_funds", body["code"])
	status, body = b.withdraw(t, b.shop, "m", "w1", "20.00")
	require.Equal(t, 201, status, body)
	require.Equal(t, "0.00", b.balance(t, "m", "available"))
	b.requireSound(t)
}

func TestPayoutBatchesAndResults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.putProgram(t, walletProgram("UTC", `{"min":"10.00","max":"5000.00","daily_count":50,"daily_amount":"100000.00",
		"monthly_amount":"500000.00","fee_rate":"0.01","fee_min":"1.00","review_above":"5000.00"}`))
	const members, each = 6, 5
	for m := range members {
		id := fmt.Sprintf("m%d", m)
		b.member(t, id)
		b.fund(t, id, "10000.00")
		for w := range each {
			status, body := b.withdraw(t, b.shop, id, fmt.Sprintf("%s-w%d", id, w), fmt.Sprintf("%d.00", 100+w))
			require.Equal(t, 201, status, body)
		}
	}

	t.Run("ConcurrentCutsNeverShareAnItem", func(t *testing.T) {
		var wg sync.WaitGroup
		batches := make([]*wallet.Batch, 6)
		for i := range batches {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Small batches, so that the cuts really compete for the same rows.
				bt, _, err := b.wallet.Cut(context.Background(), wallet.CutRequest{Currency: "CNY", Max: 7})
				require.NoError(t, err)
				batches[i] = bt
			}()
		}
		wg.Wait()
		seen := map[string]string{}
		for _, bt := range batches {
			if bt == nil {
				continue
			}
			for _, it := range bt.Items {
				require.Empty(t, seen[it.WithdrawalID], "withdrawal %s in two batches", it.WithdrawalID)
				seen[it.WithdrawalID] = bt.ID
			}
		}
		// The API and the periodic job's cut take what is left.
		status, cut, _ := b.do(t, "POST", "/v1/payout-batches", b.operator, `{"currency":"CNY"}`)
		if status == 201 {
			for _, it := range cut["batch"].(map[string]any)["items"].([]any) {
				wid := it.(map[string]any)["withdrawal_id"].(string)
				require.Empty(t, seen[wid])
				seen[wid] = cut["batch"].(map[string]any)["id"].(string)
			}
		}
		require.Len(t, seen, members*each)
		status, none, _ := b.do(t, "POST", "/v1/payout-batches", b.operator, `{"currency":"CNY"}`)
		require.Equal(t, 200, status, none)
		require.Nil(t, none["batch"])
		// The database refuses a withdrawal in a second batch, whatever the code does.
		var anyID string
		for wid := range seen {
			anyID = wid
			break
		}
		_, err := b.pool.Exec(context.Background(), `INSERT INTO payout_items (batch_id, withdrawal_id) VALUES ($1, $2)`, seen[anyID], anyID)
		require.ErrorContains(t, err, "payout_items_withdrawal_id_key")
	})

	// A fresh set of withdrawals for the results, in one batch cut with a client id.
	b.member(t, "r")
	b.fund(t, "r", "1000.00")
	for i, amt := range []string{"100.00", "200.00", "50.00", "10.00"} {
		status, body, _ := b.do(t, "POST", "/v1/members/r/withdrawals", b.shop, fmt.Sprintf(
			`{"id":"r%d","amount":"%s","currency":"CNY","destination":{"type":"alipay","account":"acct-%d","name":"Han Meimei"}}`, i, amt, i))
		require.Equal(t, 201, status, body)
	}
	status, cut, hdr := b.do(t, "POST", "/v1/payout-batches", b.operator, `{"id":"batch-r","currency":"CNY"}`)
	require.Equal(t, 201, status, cut)
	require.Empty(t, hdr.Get("Idempotent-Replayed"))
	status, again, hdr := b.do(t, "POST", "/v1/payout-batches", b.operator, `{"id":"batch-r","currency":"CNY"}`)
	require.Equal(t, 201, status, again)
	require.Equal(t, "true", hdr.Get("Idempotent-Replayed"))
	require.Equal(t, cut, again)
	batch := cut["batch"].(map[string]any)
	require.Equal(t, "360.00", batch["amount"])
	require.Equal(t, "5.00", batch["fee"]) // 1.00 + 2.00 + 1.00 (fee_min of 50.00) + 1.00 (fee_min of 10.00)
	require.Equal(t, "355.00", batch["net"])
	items := batch["items"].([]any)
	require.Len(t, items, 4)
	itemID := func(i int) string { return fmt.Sprint(items[i].(map[string]any)["id"]) }

	t.Run("BankFileHasDestinationsInFull", func(t *testing.T) {
		req, _ := http.NewRequest("GET", b.srv.URL+"/v1/payout-batches/batch-r?format=csv", nil)
		req.Header.Set("Authorization", "Bearer "+b.operator)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		require.Contains(t, resp.Header.Get("Content-Type"), "text/csv")
		recs, err := csv.NewReader(resp.Body).ReadAll()
		require.NoError(t, err)
		require.Equal(t, []string{"item_id", "withdrawal_id", "member_id", "destination_type", "account", "name", "net_amount", "currency"}, recs[0])
		require.Equal(t, []string{itemID(0), "r0", "r", "alipay", "acct-0", "Han Meimei", "99.00", "CNY"}, recs[1])
		require.Len(t, recs, 5)
		// Everyone else sees masked destinations, and no bank file.
		status, body, _ := b.get(t, "/v1/payout-batches/batch-r?format=csv", b.auditor)
		require.Equal(t, 403, status, body)
		status, body, _ = b.get(t, "/v1/payout-batches/batch-r", b.auditor)
		require.Equal(t, 200, status, body)
		d := body["items"].([]any)[0].(map[string]any)["destination"].(map[string]any)
		require.Equal(t, map[string]any{"type": "alipay", "account_last4": "ct-0"}, d)
		status, body, _ = b.get(t, "/v1/payout-batches/batch-r", b.operator)
		require.Equal(t, 200, status, body)
		require.Equal(t, "acct-0", body["items"].([]any)[0].(map[string]any)["destination"].(map[string]any)["account"])
	})

	t.Run("ResultsExactlyOncePerItem", func(t *testing.T) {
		before := b.entries(t)
		body := fmt.Sprintf(`{"items":[{"item_id":%s,"status":"paid","reference":"BANK-1"},
			{"item_id":%s,"status":"failed","reason":"account closed"},
			{"item_id":999999,"status":"paid"},
			{"item_id":%s,"status":"lost"}]}`, itemID(0), itemID(1), itemID(2))
		status, res, _ := b.do(t, "POST", "/v1/payout-batches/batch-r/results", b.operator, body)
		require.Equal(t, 200, status, res)
		rs := res["results"].([]any)
		code := func(i int) any {
			r := rs[i].(map[string]any)
			if p, ok := r["problem"].(map[string]any); ok {
				return p["code"]
			}
			return r["item"].(map[string]any)["status"]
		}
		require.Equal(t, []any{"paid", "failed", "not_found", "validation_failed"}, []any{code(0), code(1), code(2), code(3)})
		// No worker runs here, so the submission job waits: results may come before it.
		require.Equal(t, "open", res["batch_status"], res)
		require.Equal(t, before+2, b.entries(t))
		// paid: 100.00 leaves withdrawing, 99.00 to cash, 1.00 to fees; failed: 200.00 back to available.
		require.Equal(t, "840.00", b.balance(t, "r", "available"))
		require.Equal(t, "60.00", b.balance(t, "r", "withdrawing"))

		// The same again replays; a different result for a settled item is refused; nothing is written.
		status, res, _ = b.do(t, "POST", "/v1/payout-batches/batch-r/results", b.operator, fmt.Sprintf(
			`{"items":[{"item_id":%s,"status":"paid","reference":"BANK-1"},{"item_id":%s,"status":"paid","reference":"BANK-2"}]}`, itemID(0), itemID(1)))
		require.Equal(t, 200, status, res)
		rs = res["results"].([]any)
		require.Equal(t, true, rs[0].(map[string]any)["replayed"])
		require.Equal(t, "invalid_state", rs[1].(map[string]any)["problem"].(map[string]any)["code"])
		require.Equal(t, before+2, b.entries(t))

		// The failed item's money can be withdrawn again.
		status, w := b.withdraw(t, b.shop, "r", "r1-again", "200.00")
		require.Equal(t, 201, status, w)

		// The rest through the bank's return file; the batch completes.
		file := "item_id,withdrawal_id,status,reference,reason\r\n" + itemID(2) + ",r2,paid,BANK-3,\r\n" + itemID(3) + ",r3,paid,BANK-4,\r\n"
		req, _ := http.NewRequest("POST", b.srv.URL+"/v1/payout-batches/batch-r/results", strings.NewReader(file))
		req.Header.Set("Authorization", "Bearer "+b.operator)
		req.Header.Set("Content-Type", "text/csv")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, string(raw))
		require.Contains(t, string(raw), `"batch_status":"completed"`)

		_, bal, _ := b.get(t, "/v1/members/r/balances", b.shop)
		row := bal["balances"].([]any)[0].(map[string]any)
		require.Equal(t, "160.00", row["paid_out"])
		require.Equal(t, "200.00", row["withdrawing"])
		_, wd, _ := b.get(t, "/v1/withdrawals/r1", b.shop)
		require.Equal(t, "failed", wd["status"])
		require.Equal(t, "account closed", wd["reason"])
	})

	t.Run("ResultsForAnotherBatchOrNoBatch", func(t *testing.T) {
		status, res, _ := b.do(t, "POST", "/v1/payout-batches/nope/results", b.operator, `{"items":[{"item_id":1,"status":"paid"}]}`)
		require.Equal(t, 404, status, res)
		// An item of the first test's batches, named under batch-r.
		var other int64
		require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT min(id) FROM payout_items WHERE batch_id <> 'batch-r'`).Scan(&other))
		status, res, _ = b.do(t, "POST", "/v1/payout-batches/batch-r/results", b.operator, fmt.Sprintf(`{"items":[{"item_id":%d,"status":"paid"}]}`, other))
		require.Equal(t, 200, status, res)
		require.Equal(t, "not_found", res["results"].([]any)[0].(map[string]any)["problem"].(map[string]any)["code"])
	})

	t.Run("PayoutReportReconciles", func(t *testing.T) {
		status, rep, _ := b.get(t, "/v1/reports/payouts", b.auditor)
		require.Equal(t, 200, status, rep)
		rec := rep["reconciliation"].([]any)[0].(map[string]any)
		require.Equal(t, true, rec["ok"], rec)
		require.Equal(t, "157.00", rec["paid_net"]) // 99.00 + 49.00 + 9.00
		require.Equal(t, "3.00", rec["paid_fees"])
		require.Equal(t, rec["paid_net"], rec["cash_paid_out"])
		require.Equal(t, rec["paid_fees"], rec["fee_income"])
		require.Equal(t, rec["withdrawals_in_flight"], rec["withdrawing_balances"])
	})
	b.requireSound(t)
}

// crashAfterSubmit hands the batch to the simulated provider and then fails, the first time, as a
// process killed between submitting and recording the submission would: the submission job runs
// again and submits the batch a second time.
type crashAfterSubmit struct {
	*simulated.Provider
	crashed atomic.Bool
}

func (p *crashAfterSubmit) Submit(ctx context.Context, b wallet.Batch) error {
	if err := p.Provider.Submit(ctx, b); err != nil {
		return err
	}
	if p.crashed.CompareAndSwap(false, true) {
		return fmt.Errorf("simulated crash after submitting %s", b.ID)
	}
	return nil
}

func TestSimulatedProviderPaysEachItemOnceAcrossACrash(t *testing.T) {
	t.Parallel()
	// The report comes after River's first retry (about a second): the batch is still open when the
	// submission job runs again, so the provider really is handed the batch twice.
	sim := simulated.New(3 * time.Second)
	b := setupWith(t, setupOpts{workers: true, provider: &crashAfterSubmit{Provider: sim}, sim: sim})
	b.member(t, "m")
	b.fund(t, "m", "1000.00")
	for i, acct := range []string{"6222-ok-1", "6222-FAIL-2", "6222-ok-3"} {
		status, body, _ := b.do(t, "POST", "/v1/members/m/withdrawals", b.shop, fmt.Sprintf(
			`{"id":"s%d","amount":"100.00","currency":"CNY","destination":{"type":"bank","account":"%s","name":"Li Lei"}}`, i, acct))
		require.Equal(t, 201, status, body)
	}
	status, cut, _ := b.do(t, "POST", "/v1/payout-batches", b.operator, `{"currency":"CNY"}`)
	require.Equal(t, 201, status, cut)
	id := cut["batch"].(map[string]any)["id"].(string)
	var batch map[string]any
	require.Eventually(t, func() bool {
		_, batch, _ = b.get(t, "/v1/payout-batches/"+id, b.operator)
		return batch["status"] == "completed"
	}, 30*time.Second, 50*time.Millisecond, "batch %s never completed", id)
	require.Equal(t, 2, sim.Submissions(id), "the batch was submitted again after the crash")
	statuses := map[string]any{}
	for _, it := range batch["items"].([]any) {
		it := it.(map[string]any)
		statuses[it["withdrawal_id"].(string)] = it["status"]
	}
	require.Equal(t, map[string]any{"s0": "paid", "s1": "failed", "s2": "paid"}, statuses)
	var payouts int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM entries WHERE kind IN ('payout', 'payout_failed')`).Scan(&payouts))
	require.Equal(t, 3, payouts, "one settling entry per item")
	require.Equal(t, "800.00", b.balance(t, "m", "available"))
	require.Equal(t, "0.00", b.balance(t, "m", "withdrawing"))
	_, bal, _ := b.get(t, "/v1/members/m/balances", b.shop)
	require.Equal(t, "200.00", bal["balances"].([]any)[0].(map[string]any)["paid_out"])
	b.requireSound(t)
}

func TestMemberTokensSeeOnlyTheirOwnWithdrawals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, m := range []string{"alice", "bob"} {
		b.member(t, m)
		b.fund(t, m, "500.00")
	}
	token := func(member string) string {
		status, tok, _ := b.do(t, "POST", "/v1/members/"+member+"/tokens", b.shop, "")
		require.Equal(t, 201, status, tok)
		return tok["token"].(string)
	}
	alice, bob := token("alice"), token("bob")
	status, w := b.withdraw(t, alice, "alice", "a1", "100.00")
	require.Equal(t, 201, status, w)
	require.Equal(t, map[string]any{"type": "bank", "account_last4": "5678"}, w["destination"], "the answer to a create is masked")

	status, body := b.withdraw(t, bob, "alice", "b-steals", "100.00")
	require.Equal(t, 403, status, body)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/withdrawals/a1"}, {"POST", "/v1/withdrawals/a1/cancel"},
	} {
		status, body, _ := b.do(t, tc.method, tc.path, bob, "")
		require.Equal(t, 404, status, "%s %s: %v", tc.method, tc.path, body)
	}
	status, body, _ = b.do(t, "GET", "/v1/members/alice/withdrawals", bob, "")
	require.Equal(t, 403, status, body)
	for _, tc := range []struct{ method, path string }{
		{"POST", "/v1/withdrawals/a1/approve"}, {"GET", "/v1/withdrawals"}, {"POST", "/v1/payout-batches"},
		{"GET", "/v1/reports/payouts"},
	} {
		status, body, _ := b.do(t, tc.method, tc.path, alice, "")
		require.Equal(t, 403, status, "%s %s: %v", tc.method, tc.path, body)
	}
	require.Equal(t, "100.00", b.balance(t, "alice", "withdrawing"), "nothing bob did changed alice's withdrawal")

	// Masked for the member, the shop and the auditor; whole for the operator.
	for _, key := range []string{alice, b.shop, b.auditor} {
		_, got, _ := b.get(t, "/v1/withdrawals/a1", key)
		require.Equal(t, map[string]any{"type": "bank", "account_last4": "5678"}, got["destination"])
		_, list, _ := b.get(t, "/v1/members/alice/withdrawals", key)
		require.Equal(t, map[string]any{"type": "bank", "account_last4": "5678"}, list["items"].([]any)[0].(map[string]any)["destination"])
	}
	_, got, _ := b.get(t, "/v1/withdrawals/a1", b.operator)
	require.Equal(t, map[string]any{"type": "bank", "account": "6222020012345678", "name": "Li Lei"}, got["destination"])

	status, body, _ = b.do(t, "POST", "/v1/withdrawals/a1/cancel", alice, "")
	require.Equal(t, 200, status, body)
	require.Equal(t, "cancelled", body["status"])
}

func TestWalletRefusesBadInputAndWritesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.member(t, "m")
	b.fund(t, "m", "500.00")
	status, w := b.withdraw(t, b.shop, "m", "ok", "100.00")
	require.Equal(t, 201, status, w)
	before := b.entries(t)
	dest := `"destination":{"type":"bank","account":"6222","name":"Li Lei"}`
	long := strings.Repeat("x", 10_000)
	for _, tc := range []struct {
		method, path, body, code string
	}{
		{"POST", "/v1/members/m/withdrawals", `{"id":"w","amount":"10.00","currency":"CNY",` + dest + `,"extra":1}`, "validation_failed"},
		{"POST", "/v1/members/m/withdrawals", `{"id":"w","amount":10.00,"currency":"CNY",` + dest + `}`, "validation_failed"},
		{"POST", "/v1/members/m/withdrawals", `{"id":"w","amount":"-10.00","currency":"CNY",` + dest + `}`, "validation_failed"},
		{"POST", "/v1/members/m/withdrawals", `{"id":"w","amount":"0.00","currency":"CNY",` + dest + `}`, "validation_failed"},
		{"POST", "/v1/members/m/withdrawals", `{"id":"w","amount":"1e3","currency":"CNY",` + dest + `}`, "validation_failed"},
		{"POST", "/v1/members/m/withdrawals", `{"id":"w","amount":"10.001","currency":"CNY",` + dest + `}`, "validation_failed"},
		{"POST", "/v1/members/m/withdrawals", `{"id":"w","amount":"99999999999999999999999999","currency":"CNY",` + dest + `}`, "validation_failed"},
		{"POST", "/v1/members/m/withdrawals", `{"id":"","amount":"10.00","currency":"CNY",` + dest + `}`, "validation_failed"},
		{"POST", "/v1/members/m/withdrawals", `{"id":"w\u0000","amount":"10.00","currency":"CNY",` + dest + `}`, "validation_failed"},
		{"POST", "/v1/members/m/withdrawals", `{"id":"` + long + `","amount":"10.00","currency":"CNY",` + dest + `}`, "validation_failed"},
		{"POST", "/v1/members/m/withdrawals", `{"id":"w","amount":"10.00","currency":"CNY"}`, "validation_failed"},
		{"POST", "/v1/members/m/withdrawals", `{"id":"w","amount":"10.00","currency":"CNY","destination":{"type":"paypal","account":"1","name":"x"}}`, "validation_failed"},
		{"POST", "/v1/members/m/withdrawals", `{"id":"w","amount":"10.00","currency":"CNY","destination":{"type":"bank","account":"1\u0000","name":"x"}}`, "validation_failed"},
		{"POST", "/v1/members/m/withdrawals", `{"id":"w","amount":"10.00","currency":"CNY","destination":{"type":"bank","account":"","name":"x"}}`, "validation_failed"},
		{"POST", "/v1/members/m/withdrawals", `[]`, "validation_failed"},
		{"POST", "/v1/members/m/withdrawals", `{"id":`, "validation_failed"},
		{"POST", "/v1/members/m/withdrawals", `{"id":"w","amount":"10.00","currency":"USD",` + dest + `}`, "unsupported_currency"},
		{"POST", "/v1/members/m/withdrawals", `{"id":"w","amount":"10","currency":"PTS",` + dest + `}`, "unsupported_currency"},
		{"POST", "/v1/members/m/withdrawals", `{"id":"w","amount":"10.00","currency":"XYZ",` + dest + `}`, "unsupported_currency"},
		{"POST", "/v1/members/ghost/withdrawals", `{"id":"w","amount":"10.00","currency":"CNY",` + dest + `}`, "not_found"},
		{"POST", "/v1/members/m/withdrawals", `{"id":"ok","amount":"100.01","currency":"CNY",` + dest + `}`, "idempotency_conflict"},
		{"POST", "/v1/members/m/withdrawals", `{"id":"w","amount":"5000.01","currency":"CNY",` + dest + `}`, "above_maximum"},
		{"POST", "/v1/members/m/withdrawals", `{"id":"w","amount":"401.00","currency":"CNY",` + dest + `}`, "insufficient_funds"},
		{"POST", "/v1/withdrawals/ok/approve", `{"reason":5}`, "validation_failed"},
		{"POST", "/v1/withdrawals/ok/reject", `{"reason":"` + long + `"}`, "validation_failed"},
		{"POST", "/v1/withdrawals/ghost/cancel", ``, "not_found"},
		{"POST", "/v1/withdrawals/ok/cancel", `{"nope":true}`, "validation_failed"},
		{"POST", "/v1/payout-batches", `{"currency":"PTS"}`, "unsupported_currency"},
		{"POST", "/v1/payout-batches", `{"currency":"CNY","id":"bad id"}`, "validation_failed"},
		{"POST", "/v1/payout-batches", `{"currency":"CNY","max":5}`, "validation_failed"},
		{"POST", "/v1/payout-batches/ghost/results", `{"items":[]}`, "validation_failed"},
		{"POST", "/v1/payout-batches/ghost/results", `{"items":[{"item_id":"x","status":"paid"}]}`, "validation_failed"},
		{"POST", "/v1/payout-batches/ghost/results", `{"items":[{"item_id":1,"status":"paid"}]}`, "not_found"},
		{"GET", "/v1/payout-batches/ghost", ``, "not_found"},
		{"GET", "/v1/withdrawals/ghost", ``, "not_found"},
		{"GET", "/v1/withdrawals?cursor=garbage", ``, "validation_failed"},
		{"GET", "/v1/withdrawals?cursor=" + page.IntCursor("statement", 1), ``, "validation_failed"}, // another list's
		{"GET", "/v1/withdrawals?limit=0", ``, "validation_failed"},
		{"GET", "/v1/reports/payouts?from=yesterday", ``, "validation_failed"},
	} {
		key := b.shop
		if strings.Contains(tc.path, "approve") || strings.Contains(tc.path, "reject") || strings.Contains(tc.path, "payout") ||
			strings.HasPrefix(tc.path, "/v1/withdrawals?") {
			key = b.operator
		}
		status, body, hdr := b.do(t, tc.method, tc.path, key, tc.body)
		require.GreaterOrEqual(t, status, 400, "%s %s %s: %v", tc.method, tc.path, tc.body, body)
		require.Less(t, status, 500, "%s %s %.200s: %v", tc.method, tc.path, tc.body, body)
		require.Equal(t, tc.code, body["code"], "%s %s %.200s: %v", tc.method, tc.path, tc.body, body)
		require.Equal(t, "application/problem+json", hdr.Get("Content-Type"))
		require.LessOrEqual(t, len(body["detail"].(string)), 310, "details are bounded")
	}
	require.Equal(t, before, b.entries(t), "a refused request writes nothing")
	require.Equal(t, "400.00", b.balance(t, "m", "available"))
}

// TestConcurrentDuplicateCreates sends each create twice at once: one effect, and the other answer
// is a byte-for-byte replay, never a conflict.
func TestConcurrentDuplicateCreates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.member(t, "ref")
	status, m, _ := b.do(t, "POST", "/v1/members", b.shop, `{"id":"p","referrer_id":"ref"}`) // 50 sign-up points
	require.Equal(t, 201, status, m)
	b.fund(t, "p", "1000.00")
	rawDo := func(path, body string) (int, string, string) {
		req, _ := http.NewRequest("POST", b.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+b.shop)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Idempotent-Replayed"), string(raw)
	}
	for _, tc := range []struct {
		name, path string
		body       func(i int) string
	}{
		{"Redemption", "/v1/members/p/points/redemptions", func(i int) string { return fmt.Sprintf(`{"id":"r%d","points":1,"reason":"coupon"}`, i) }},
		{"Withdrawal", "/v1/members/p/withdrawals", func(i int) string {
			return fmt.Sprintf(`{"id":"w%d","amount":"10.00","currency":"CNY","destination":{"type":"bank","account":"6222","name":"Li"}}`, i)
		}},
		{"Member", "/v1/members", func(i int) string { return fmt.Sprintf(`{"id":"new%d","referrer_id":"ref"}`, i) }},
		{"Event", "/v1/events", func(i int) string {
			return fmt.Sprintf(`{"id":"e%d","type":"order.paid","occurred_at":"2026-11-01T08:00:00Z","data":{"order_id":"o%d","member_id":"p","amount":"10.00","currency":"CNY"}}`, i, i)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 3 { // the daily count of withdrawals is 3
				var wg sync.WaitGroup
				type answer struct {
					status         int
					replayed, body string
				}
				got := make([]answer, 2)
				for k := range got {
					wg.Add(1)
					go func() {
						defer wg.Done()
						s, r, body := rawDo(tc.path, tc.body(i))
						got[k] = answer{s, r, body}
					}()
				}
				wg.Wait()
				require.Equal(t, got[0].status, got[1].status, "%v", got)
				require.Contains(t, []int{200, 201}, got[0].status, "%v", got)
				require.ElementsMatch(t, []string{"", "true"}, []string{got[0].replayed, got[1].replayed}, "%v", got)
				require.Equal(t, got[0].body, got[1].body, "a replay answers the original's bytes")
			}
		})
	}
	b.requireSound(t)
}

// TestOneWithdrawalIDForTwoMembersAtOnce: the member's lock does not serialise these, so the two
// collide on the recorded id; the loser runs again, sees the winner, and is refused as a conflict.
func TestOneWithdrawalIDForTwoMembersAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for round := range 5 {
		id := fmt.Sprintf("shared-%d", round)
		pair := []string{fmt.Sprintf("x%d", round), fmt.Sprintf("y%d", round)}
		for _, m := range pair {
			b.member(t, m)
			b.fund(t, m, "100.00")
		}
		var wg sync.WaitGroup
		statuses := make([]int, 2)
		codes := make([]any, 2)
		for i, m := range pair {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var body map[string]any
				statuses[i], body = b.withdraw(t, b.shop, m, id, "10.00")
				codes[i] = body["code"]
			}()
		}
		wg.Wait()
		require.ElementsMatch(t, []int{201, 409}, statuses, "round %d: %v", round, codes)
		require.Contains(t, codes, "idempotency_conflict")
	}
	b.requireSound(t)
}
