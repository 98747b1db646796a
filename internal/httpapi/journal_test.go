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
