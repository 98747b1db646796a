package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/audit"
	"github.com/rebate-ledger/rebate/internal/wallet"
)

func (b *testBundle) sealAll(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, err := b.ledger.SealAll(context.Background())
		require.NoError(t, err)
		n, err := b.ledger.Unsealed(context.Background())
		require.NoError(t, err)
		return n == 0
	}, 30*time.Second, 20*time.Millisecond)
}

func TestJournalExportOverHTTP(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, m := range []string{"a", "b"} {
		b.member(t, m)
		b.fund(t, m, "100.00")
	}
	status, w := b.withdraw(t, b.shop, "a", "w1", "50.00")
	require.Equal(t, 201, status, w)
	b.sealAll(t)
	get := func(path, key string) (int, string, []byte) {
		req, _ := http.NewRequest("GET", b.srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), body
	}
	status, ct, body := get("/v1/journal", b.auditor)
	require.Equal(t, 200, status, string(body))
	require.Equal(t, "application/x-ndjson", ct)
	rep, err := audit.VerifyFile(bytes.NewReader(body), nil)
	require.NoError(t, err)
	require.EqualValues(t, 5, rep.Entries) // two fundings of two entries each, one withdrawal
	status, _, body = get("/v1/journal?from_seq=2&to_seq=3", b.auditor)
	require.Equal(t, 200, status)
	rep, err = audit.VerifyFile(bytes.NewReader(body), nil)
	require.NoError(t, err)
	require.EqualValues(t, 2, rep.Entries)
	status, ct, body = get("/v1/journal?format=csv", b.auditor)
	require.Equal(t, 200, status)
	require.Contains(t, ct, "text/csv")
	require.Equal(t, 1+10, bytes.Count(body, []byte("\r\n")), "a header and ten postings")
	status, _, body = get("/v1/journal?format=hledger", b.auditor)
	require.Equal(t, 200, status)
	require.Contains(t, string(body), "liabilities:member:a:withdrawing")
	for path, want := range map[string]int{"/v1/journal?format=xml": 400, "/v1/journal?from_seq=0": 400, "/v1/journal?from=yesterday": 400} {
		status, _, body := get(path, b.auditor)
		require.Equal(t, want, status, "%s: %s", path, body)
	}
	for _, key := range []string{b.shop, b.operator} {
		status, _, _ := get("/v1/journal", key)
		require.Equal(t, 403, status)
	}
}

// TestCheckerIsCleanOnTheRealFlowsAndReportsOverHTTP: accruals, a release, a refund, a withdrawal
// and a payout written by the engine and the wallet leave the checker nothing to report.
func TestCheckerIsCleanOnTheRealFlowsAndReportsOverHTTP(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.member(t, "a")
	status, m, _ := b.do(t, "POST", "/v1/members", b.shop, `{"id":"b","referrer_id":"a"}`)
	require.Equal(t, 201, status, m)
	for i, order := range []string{"o1", "o2"} {
		status, ev, _ := b.do(t, "POST", "/v1/events", b.shop, paidEvent("e"+order, order, "b", "2026-11-0"+string(rune('1'+i))+"T08:00:00Z"))
		require.Equal(t, 201, status, ev)
	}
	status, ev, _ := b.do(t, "POST", "/v1/events", b.shop, `{"id":"r1","type":"order.refunded","occurred_at":"2026-11-03T08:00:00Z","data":{"order_id":"o2","refund_id":"rf1","amount":"40.00"}}`)
	require.Equal(t, 201, status, ev)
	require.NoError(t, b.engine.Release(ctx, "o1"))
	status, w := b.withdraw(t, b.shop, "a", "w1", "11.00")
	require.Equal(t, 201, status, w)
	b.sealAll(t)
	ch, err := audit.NewChecker(b.pool).Run(ctx)
	require.NoError(t, err)
	require.NotNil(t, ch)
	require.Equal(t, "ok", ch.Status, ch.Violations)
	require.Positive(t, ch.Accounts)

	status, list, _ := b.get(t, "/v1/reports/checks", b.auditor)
	require.Equal(t, 200, status, list)
	items := list["items"].([]any)
	require.Len(t, items, 1)
	require.Equal(t, "ok", items[0].(map[string]any)["status"])
	status, _, _ = b.get(t, "/v1/reports/checks", b.shop)
	require.Equal(t, 403, status)
}

// TestIncomeStatementEqualsThePlatformAccountsMovements: over a period, each figure is the movement
// of its platform account between the period's two ends (balances as of each).
func TestIncomeStatementEqualsThePlatformAccountsMovements(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.member(t, "a")
	status, m, _ := b.do(t, "POST", "/v1/members", b.shop, `{"id":"b","referrer_id":"a"}`)
	require.Equal(t, 201, status, m)
	status, ev, _ := b.do(t, "POST", "/v1/events", b.shop, paidEvent("e1", "o1", "b", "2026-11-01T08:00:00Z"))
	require.Equal(t, 201, status, ev)
	time.Sleep(2 * time.Millisecond)
	from := time.Now()
	time.Sleep(2 * time.Millisecond)
	status, ev, _ = b.do(t, "POST", "/v1/events", b.shop, paidEvent("e2", "o2", "b", "2026-11-02T08:00:00Z"))
	require.Equal(t, 201, status, ev)
	status, ev, _ = b.do(t, "POST", "/v1/events", b.shop, `{"id":"r1","type":"order.refunded","occurred_at":"2026-11-03T08:00:00Z","data":{"order_id":"o2","refund_id":"rf1","amount":"100.00"}}`)
	require.Equal(t, 201, status, ev)
	require.NoError(t, b.engine.Release(ctx, "o1"))
	status, w := b.withdraw(t, b.shop, "a", "w1", "11.00")
	require.Equal(t, 201, status, w)
	bt, _, err := b.wallet.Cut(ctx, wallet.CutRequest{Currency: "CNY"})
	require.NoError(t, err)
	_, err = b.wallet.ApplyResults(ctx, bt.ID, []wallet.ItemResult{{ItemID: bt.Items[0].ID, Status: wallet.ItemPaid}})
	require.NoError(t, err)
	time.Sleep(2 * time.Millisecond)
	to := time.Now()

	q := "/v1/reports/income-statement?from=" + from.UTC().Format(time.RFC3339Nano) + "&to=" + to.UTC().Format(time.RFC3339Nano) + "&currency=CNY"
	status, body, _ := b.get(t, q, b.operator)
	require.Equal(t, 200, status, body)
	line := body["currencies"].([]any)[0].(map[string]any)
	movement := func(code string) string {
		before, err := b.ledger.Balances(ctx, code, &from)
		require.NoError(t, err)
		after, err := b.ledger.Balances(ctx, code, &to)
		require.NoError(t, err)
		for i := range after {
			if after[i].Currency == "CNY" {
				d := after[i].Balance.Decimal()
				for _, x := range before {
					if x.Currency == "CNY" {
						d = d.Sub(x.Balance.Decimal())
					}
				}
				return d.StringFixed(2)
			}
		}
		return "0.00"
	}
	// o2's rebates (5.00 + 2.00 of 100.00) granted, all clawed back by the full refund; the 11.00
	// withdrawal paid 10.00 with a fee of 1.00; o1's accrual was before the period.
	require.Equal(t, "5.00", line["rebates_granted"])
	require.Equal(t, "5.00", line["clawed_back"])
	require.Equal(t, "1.00", line["withdrawal_fees"])
	require.Equal(t, "10.00", line["paid_out"])
	require.Equal(t, "-1.00", line["net_cost"])
	require.Equal(t, movement("platform:rebate_expense"), "0.00")
	require.Equal(t, movement("platform:fee_income"), line["withdrawal_fees"])
	require.Equal(t, "-"+line["paid_out"].(string), movement("platform:cash"))

	b.sealAll(t)
	status, tb, _ := b.get(t, "/v1/reports/trial-balance", b.auditor)
	require.Equal(t, 200, status, tb)
	require.Positive(t, tb["chain_seq"])
	status, tb, _ = b.get(t, "/v1/reports/trial-balance?as_of=2000-01-01T00:00:00Z", b.auditor)
	require.Equal(t, 200, status, tb)
	require.EqualValues(t, 0, tb["chain_seq"])
	for _, bad := range []string{"?from=x", "?currency=XYZ"} {
		status, _, _ := b.get(t, "/v1/reports/income-statement"+bad, b.auditor)
		require.Equal(t, 400, status, bad)
	}
	status, _, _ = b.get(t, "/v1/reports/income-statement", b.shop)
	require.Equal(t, 403, status)
}
