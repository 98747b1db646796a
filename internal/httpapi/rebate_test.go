package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func (b *testBundle) entryCount(t *testing.T) int {
	t.Helper()
	status, body, _ := b.get(t, "/v1/reports/trial-balance", b.auditor)
	require.Equal(t, http.StatusOK, status)
	return len(body["accounts"].([]any))
}

func TestMembersEventsAndOrders(t *testing.T) {
	t.Parallel()
	b := setup(t)

	status, root, _ := b.do(t, "POST", "/v1/members", b.shop, `{"id":"u7"}`)
	require.Equal(t, http.StatusCreated, status, root)
	code := root["referral_code"].(string)
	status, m, hdr := b.do(t, "POST", "/v1/members", b.shop, `{"id":"u42","referral_code":"`+code+`"}`)
	require.Equal(t, http.StatusCreated, status, m)
	require.Equal(t, []any{"u7"}, m["upline"])
	require.Equal(t, "u7", m["referrer_id"])
	require.Empty(t, hdr.Get("Idempotent-Replayed"))
	status, again, hdr := b.do(t, "POST", "/v1/members", b.shop, `{"id":"u42","referral_code":"`+code+`"}`)
	require.Equal(t, http.StatusCreated, status)
	require.Equal(t, "true", hdr.Get("Idempotent-Replayed"))
	require.Equal(t, m["referral_code"], again["referral_code"])

	for _, tc := range []struct{ body, code string }{
		{`{"id":"u42","referrer_id":"u1"}`, "idempotency_conflict"},
		{`{"id":"x","referrer_id":"nobody"}`, "unknown_referrer"},
		{`{"id":"x","referrer_id":"x"}`, "self_referral"},
		{`{"id":"x","referral_code":"` + code + `","referrer_id":"u7"}`, "validation_failed"},
		{`{"id":"has space"}`, "validation_failed"},
		{`{"id":"x","extra":1}`, "validation_failed"},
		{`{"id":`, "validation_failed"},
		{`[]`, "validation_failed"},
	} {
		_, p, _ := b.do(t, "POST", "/v1/members", b.shop, tc.body)
		require.Equal(t, tc.code, p["code"], tc.body)
	}
	status, p, _ := b.do(t, "POST", "/v1/members", b.auditor, `{"id":"z"}`)
	require.Equal(t, http.StatusForbidden, status, p)

	paid := `{"id":"e1","type":"order.paid","occurred_at":"2026-11-01T08:00:00Z","data":{"order_id":"o1","member_id":"u42","amount":"99.99","currency":"CNY"}}`
	status, ev, hdr := b.do(t, "POST", "/v1/events", b.shop, paid)
	require.Equal(t, http.StatusCreated, status, ev)
	require.Equal(t, "applied", ev["status"])
	require.Empty(t, hdr.Get("Idempotent-Replayed"))
	rebates := ev["rebates"].([]any)
	require.NotEmpty(t, rebates)
	status, ev2, hdr := b.do(t, "POST", "/v1/events", b.shop, paid)
	require.Equal(t, http.StatusCreated, status)
	require.Equal(t, "true", hdr.Get("Idempotent-Replayed"))
	require.Equal(t, ev, ev2)

	status, ord, _ := b.get(t, "/v1/orders/o1", b.shop)
	require.Equal(t, http.StatusOK, status, ord)
	require.Equal(t, "99.99", ord["amount"])
	require.Equal(t, "paid,held", ord["status"])
	status, bal, _ := b.get(t, "/v1/members/u7/balances", b.shop)
	require.Equal(t, http.StatusOK, status, bal)
	var cny map[string]any
	for _, row := range bal["balances"].([]any) {
		if r := row.(map[string]any); r["currency"] == "CNY" {
			cny = r
		}
	}
	require.Equal(t, "4.99", ordLeg(t, ord, "u7", "level1"))
	require.Equal(t, cny["earned"], cny["held"])
	status, mem, _ := b.get(t, "/v1/members/u7", b.auditor)
	require.Equal(t, http.StatusOK, status, mem)
	require.Equal(t, float64(1), mem["stats"].(map[string]any)["invited"])
	require.Equal(t, float64(1), mem["stats"].(map[string]any)["converted"])

	refund := `{"id":"e2","type":"order.refunded","occurred_at":"2026-11-02T08:00:00Z","data":{"order_id":"o1","refund_id":"r1","amount":"99.99"}}`
	status, rf, _ := b.do(t, "POST", "/v1/events", b.shop, refund)
	require.Equal(t, http.StatusCreated, status, rf)
	status, ord, _ = b.get(t, "/v1/orders/o1", b.shop)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "refunded,held", ord["status"])

	parked := `{"id":"e3","type":"order.refunded","occurred_at":"2026-11-02T08:00:00Z","data":{"order_id":"o-later","refund_id":"r2","amount":"1.00"}}`
	status, pk, _ := b.do(t, "POST", "/v1/events", b.shop, parked)
	require.Equal(t, http.StatusAccepted, status, pk)
	require.Equal(t, "parked", pk["status"])

	status, p, _ = b.get(t, "/v1/orders/nope", b.shop)
	require.Equal(t, http.StatusNotFound, status)
	require.Equal(t, "not_found", p["code"])
	status, _, _ = b.get(t, "/v1/members/nobody/balances", b.shop)
	require.Equal(t, http.StatusNotFound, status)
}

func ordLeg(t *testing.T, ord map[string]any, member, leg string) string {
	t.Helper()
	for _, l := range ord["lots"].([]any) {
		lot := l.(map[string]any)
		if lot["member_id"] == member && lot["leg"] == leg {
			return lot["accrued"].(string)
		}
	}
	t.Fatalf("no %s lot for %s", leg, member)
	return ""
}

// TestEventBadInput: every malformed or hostile event gets a clear 4xx and changes nothing.
func TestEventBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, _, _ = b.do(t, "POST", "/v1/members", b.shop, `{"id":"ref"}`)
	_, _, _ = b.do(t, "POST", "/v1/members", b.shop, `{"id":"buyer","referrer_id":"ref"}`)
	status, _, _ := b.do(t, "POST", "/v1/events", b.shop, `{"id":"ok","type":"order.paid","occurred_at":"2026-11-01T08:00:00Z","data":{"order_id":"o1","member_id":"buyer","amount":"10.00","currency":"CNY"}}`)
	require.Equal(t, http.StatusCreated, status)
	before := b.entryCount(t)
	var entriesBefore int
	ev := func(typ, data string) string {
		return `{"id":"bad","type":"` + typ + `","occurred_at":"2026-11-01T09:00:00Z","data":` + data + `}`
	}
	for name, tc := range map[string]struct {
		body   string
		status int
		code   string
	}{
		"malformed":        {`{"id":"bad","type":`, 400, "validation_failed"},
		"not an object":    {`"hello"`, 400, "validation_failed"},
		"extra top field":  {`{"id":"bad","type":"order.paid","occurred_at":"2026-11-01T09:00:00Z","data":{},"admin":true}`, 400, "validation_failed"},
		"missing fields":   {ev("order.paid", `{"order_id":"o2"}`), 400, "validation_failed"},
		"extra data field": {ev("order.paid", `{"order_id":"o2","member_id":"buyer","amount":"1.00","currency":"CNY","rate":"0.5"}`), 400, "validation_failed"},
		"zero amount":      {ev("order.paid", `{"order_id":"o2","member_id":"buyer","amount":"0.00","currency":"CNY"}`), 400, "validation_failed"},
		"negative amount":  {ev("order.paid", `{"order_id":"o2","member_id":"buyer","amount":"-5.00","currency":"CNY"}`), 400, "validation_failed"},
		"too many decimal": {ev("order.paid", `{"order_id":"o2","member_id":"buyer","amount":"5.001","currency":"CNY"}`), 400, "validation_failed"},
		"float amount":     {ev("order.paid", `{"order_id":"o2","member_id":"buyer","amount":5.5,"currency":"CNY"}`), 400, "validation_failed"},
		"exponent amount":  {ev("order.paid", `{"order_id":"o2","member_id":"buyer","amount":"1e3","currency":"CNY"}`), 400, "validation_failed"},
		"unknown type":     {ev("order.cancelled", `{}`), 400, "validation_failed"},
		"bad time":         {`{"id":"bad","type":"order.paid","occurred_at":"yesterday","data":{}}`, 400, "validation_failed"},
		"wrong currency":   {ev("order.paid", `{"order_id":"o2","member_id":"buyer","amount":"5.00","currency":"USD"}`), 422, "unsupported_currency"},
		"unknown currency": {ev("order.paid", `{"order_id":"o2","member_id":"buyer","amount":"5.00","currency":"XBT"}`), 400, "validation_failed"},
		"unknown member":   {ev("order.paid", `{"order_id":"o2","member_id":"ghost","amount":"5.00","currency":"CNY"}`), 422, "unknown_member"},
		"refund too big":   {ev("order.refunded", `{"order_id":"o1","refund_id":"r1","amount":"10.01"}`), 422, "refund_exceeds_order"},
		"order reused":     {ev("order.paid", `{"order_id":"o1","member_id":"buyer","amount":"10.00","currency":"CNY"}`), 409, "idempotency_conflict"},
		"replay changed":   {`{"id":"ok","type":"order.paid","occurred_at":"2026-11-01T08:00:00Z","data":{"order_id":"o1","member_id":"buyer","amount":"10.01","currency":"CNY"}}`, 409, "idempotency_conflict"},
		"10 MB body":       {`{"id":"bad","type":"order.paid","occurred_at":"2026-11-01T09:00:00Z","data":{"order_id":"` + strings.Repeat("x", 10<<20) + `"}}`, 413, "payload_too_large"},
		"long order id":    {ev("order.paid", `{"order_id":"`+strings.Repeat("x", 300)+`","member_id":"buyer","amount":"5.00","currency":"CNY"}`), 400, "validation_failed"},
	} {
		status, p, hdr := b.do(t, "POST", "/v1/events", b.shop, tc.body)
		require.Equal(t, tc.status, status, "%s: %v", name, p)
		require.Equal(t, tc.code, p["code"], name)
		require.Equal(t, "application/problem+json", hdr.Get("Content-Type"), name)
	}
	require.Equal(t, before, b.entryCount(t))
	require.NoError(t, b.ledgerEntries(&entriesBefore))
	require.Equal(t, 1, entriesBefore, "only the one good event's accrual is in the journal")
}

func (b *testBundle) ledgerEntries(n *int) error {
	return b.ledger.Pool().QueryRow(context.Background(), "SELECT count(*) FROM entries WHERE kind <> 'signup_reward'").Scan(n)
}

func TestProgramEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t)
	status, prog, _ := b.get(t, "/v1/program", b.auditor)
	require.Equal(t, http.StatusOK, status, prog)
	require.Equal(t, "CNY", prog["currency"])
	require.Equal(t, []any{"0.05", "0.02", "0.01"}, prog["level_rates"])

	body := `{"currency":"CNY","hold_period":"72h","rounding":"half_even","level_rates":["0.08"],"first_order_bonus":"0.00",
		"max_rebate_ratio":"0.10","points":{"per_unit":"0","signup_referrer":0,"signup_referee":0,"validity":"24h"},
		"withdrawal":{"min":"1.00","max":"10.00","daily_count":1,"daily_amount":"10.00","monthly_amount":"100.00","fee_rate":"0","fee_min":"0.00","review_above":"5.00"}}`
	status, p, _ := b.do(t, "PUT", "/v1/program", b.auditor, body)
	require.Equal(t, http.StatusForbidden, status, p)
	status, p, _ = b.do(t, "PUT", "/v1/program", b.operator, strings.Replace(body, `"0.08"`, `"1.5"`, 1))
	require.Equal(t, http.StatusBadRequest, status, p)
	require.Equal(t, "validation_failed", p["code"])
	status, p, _ = b.do(t, "PUT", "/v1/program?effective_at=soon", b.operator, body)
	require.Equal(t, http.StatusBadRequest, status, p)
	status, p, _ = b.do(t, "PUT", "/v1/program", b.operator, body)
	require.Equal(t, http.StatusCreated, status, p)
	require.Equal(t, float64(2), p["version"])
	status, prog, _ = b.get(t, "/v1/program", b.operator)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "72h", prog["hold_period"])
	status, vs, _ := b.get(t, "/v1/program/versions", b.auditor)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, vs["items"], 2)
	status, p, _ = b.get(t, "/v1/program", b.shop)
	require.Equal(t, http.StatusForbidden, status, fmt.Sprint(p))
}

func TestStatementReferralsAndBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, body := range []string{`{"id":"g"}`, `{"id":"p","referrer_id":"g"}`, `{"id":"c1","referrer_id":"p"}`, `{"id":"c2","referrer_id":"p"}`} {
		status, m, _ := b.do(t, "POST", "/v1/members", b.shop, body)
		require.Equal(t, http.StatusCreated, status, m)
	}
	batch := `{"events":[
		{"id":"b1","type":"order.paid","occurred_at":"2026-11-01T08:00:00Z","data":{"order_id":"o1","member_id":"c1","amount":"100.00","currency":"CNY"}},
		{"id":"b2","type":"order.paid","occurred_at":"2026-11-01T08:00:00Z","data":{"order_id":"o2","member_id":"ghost","amount":"1.00","currency":"CNY"}},
		{"id":"b3","type":"order.refunded","occurred_at":"2026-11-01T09:00:00Z","data":{"order_id":"o1","refund_id":"r1","amount":"50.00"}},
		{"nonsense":true},
		{"id":"b1","type":"order.paid","occurred_at":"2026-11-01T08:00:00Z","data":{"order_id":"o1","member_id":"c1","amount":"100.00","currency":"CNY"}}
	]}`
	status, res, _ := b.do(t, "POST", "/v1/events/batch", b.shop, batch)
	require.Equal(t, http.StatusOK, status, res)
	results := res["results"].([]any)
	require.Len(t, results, 5)
	var statuses []float64
	for _, r := range results {
		statuses = append(statuses, r.(map[string]any)["status"].(float64))
	}
	require.Equal(t, []float64{201, 422, 201, 400, 201}, statuses)
	require.Equal(t, true, results[4].(map[string]any)["replayed"])
	require.Equal(t, "unknown_member", results[1].(map[string]any)["problem"].(map[string]any)["code"])

	status, st, _ := b.get(t, "/v1/members/p/statement?currency=CNY", b.shop)
	require.Equal(t, http.StatusOK, status, st)
	items := st["items"].([]any)
	// The default program: level 1 5.00, first-order bonus 5.00, milestone 10.00; the half refund
	// claws back half of level 1 only.
	require.Len(t, items, 4, "three accrual postings and a clawback on p's held")
	var amounts, balances, kinds []string
	for _, it := range items {
		m := it.(map[string]any)
		amounts = append(amounts, m["amount"].(string))
		balances = append(balances, m["balance_after"].(string))
		kinds = append(kinds, m["kind"].(string))
		require.Equal(t, "o1", m["order_id"])
	}
	require.Equal(t, []string{"accrual", "accrual", "accrual", "clawback"}, kinds)
	require.ElementsMatch(t, []string{"5.00", "5.00", "10.00", "-2.50"}, amounts)
	require.Equal(t, "17.50", balances[3])

	// Paging through everything (CNY and PTS) in pages of 2 yields each posting once, in order.
	status, all, _ := b.get(t, "/v1/members/p/statement", b.shop)
	require.Equal(t, http.StatusOK, status)
	require.Empty(t, all["next_cursor"])
	var paged []any
	cursor := ""
	for pages := 0; pages < 20; pages++ {
		status, st, _ = b.get(t, "/v1/members/p/statement?limit=2&cursor="+cursor, b.shop)
		require.Equal(t, http.StatusOK, status)
		require.LessOrEqual(t, len(st["items"].([]any)), 2)
		paged = append(paged, st["items"].([]any)...)
		cursor = st["next_cursor"].(string)
		if cursor == "" {
			break
		}
	}
	require.Equal(t, all["items"], paged)
	require.Len(t, paged, 9, "4 CNY on held, 3 sign-up PTS on available, 2 PTS on held")

	status, refs, _ := b.get(t, "/v1/members/p/referrals?level=1", b.shop)
	require.Equal(t, http.StatusOK, status, refs)
	require.Len(t, refs["items"], 2)
	c1 := refs["items"].([]any)[0].(map[string]any)
	require.Equal(t, "c1", c1["member_id"])
	require.Equal(t, true, c1["converted"])
	require.Equal(t, map[string]any{"CNY": "17.50", "PTS": "50"}, c1["earned"], "level 1 after the refund, bonus and milestone")
	status, refs, _ = b.get(t, "/v1/members/g/referrals?level=2", b.shop)
	require.Equal(t, http.StatusOK, status, refs)
	require.Len(t, refs["items"], 2)

	for path, code := range map[string]string{
		"/v1/members/p/referrals?level=4":       "validation_failed",
		"/v1/members/p/referrals?level=x":       "validation_failed",
		"/v1/members/p/statement?limit=0":       "validation_failed",
		"/v1/members/p/statement?limit=abc":     "validation_failed",
		"/v1/members/p/statement?cursor=-3":     "validation_failed",
		"/v1/members/p/statement?currency=GOLD": "validation_failed",
		"/v1/members/zz/statement":              "not_found",
	} {
		_, p, _ := b.get(t, path, b.shop)
		require.Equal(t, code, p["code"], path)
	}
	status, p, _ := b.do(t, "POST", "/v1/events/batch", b.shop, `{"events":[]}`)
	require.Equal(t, http.StatusBadRequest, status, p)
}

func TestPointsRedemptionEndpoint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	status, _, _ := b.do(t, "POST", "/v1/members", b.shop, `{"id":"p"}`)
	require.Equal(t, http.StatusCreated, status)
	status, _, _ = b.do(t, "POST", "/v1/members", b.shop, `{"id":"m","referrer_id":"p"}`) // the default program gives an invitee 50 sign-up points
	require.Equal(t, http.StatusCreated, status)
	status, r, hdr := b.do(t, "POST", "/v1/members/m/points/redemptions", b.shop, `{"id":"x1","points":20,"reason":"coupon"}`)
	require.Equal(t, http.StatusCreated, status, r)
	require.Empty(t, hdr.Get("Idempotent-Replayed"))
	status, _, hdr = b.do(t, "POST", "/v1/members/m/points/redemptions", b.shop, `{"id":"x1","points":20,"reason":"coupon"}`)
	require.Equal(t, http.StatusCreated, status)
	require.Equal(t, "true", hdr.Get("Idempotent-Replayed"))
	for body, code := range map[string]string{
		`{"id":"x1","points":21,"reason":"coupon"}`: "idempotency_conflict",
		`{"id":"x2","points":31}`:                   "insufficient_funds",
		`{"id":"x3","points":0}`:                    "validation_failed",
		`{"id":"x4","points":-5}`:                   "validation_failed",
		`{"id":"x5","points":"5"}`:                  "validation_failed",
		`{"id":"x6","points":1.5}`:                  "validation_failed",
		`{"id":"x7","points":1,"extra":true}`:       "validation_failed",
		`{"points":1}`:                              "validation_failed",
	} {
		_, p, _ := b.do(t, "POST", "/v1/members/m/points/redemptions", b.shop, body)
		require.Equal(t, code, p["code"], body)
	}
	_, p, _ := b.do(t, "POST", "/v1/members/ghost/points/redemptions", b.shop, `{"id":"x9","points":1}`)
	require.Equal(t, "not_found", p["code"])
	status, bal, _ := b.get(t, "/v1/members/m/balances", b.shop)
	require.Equal(t, http.StatusOK, status)
	for _, row := range bal["balances"].([]any) {
		if r := row.(map[string]any); r["currency"] == "PTS" {
			require.Equal(t, "30", r["available"])
		}
	}
}

func TestMemberTokens(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, body := range []string{`{"id":"alice"}`, `{"id":"bob"}`} {
		status, _, _ := b.do(t, "POST", "/v1/members", b.shop, body)
		require.Equal(t, http.StatusCreated, status)
	}
	status, tok, _ := b.do(t, "POST", "/v1/members/alice/tokens", b.shop, "")
	require.Equal(t, http.StatusCreated, status, tok)
	token := tok["token"].(string)
	require.Equal(t, "alice", tok["member_id"])

	status, p, _ := b.get(t, "/v1/members/alice/balances", token)
	require.Equal(t, http.StatusOK, status, p)
	status, _, _ = b.get(t, "/v1/members/alice/statement", token)
	require.Equal(t, http.StatusOK, status)
	for _, path := range []string{"/v1/members/bob/balances", "/v1/members/bob", "/v1/orders/o1", "/v1/reports/trial-balance", "/v1/program"} {
		status, p, _ = b.get(t, path, token)
		require.Equal(t, http.StatusForbidden, status, path)
		require.Equal(t, "forbidden", p["code"])
	}
	status, _, _ = b.do(t, "POST", "/v1/members/alice/tokens", token, "")
	require.Equal(t, http.StatusForbidden, status, "a member cannot mint tokens")
	status, _, _ = b.do(t, "POST", "/v1/events", token, `{}`)
	require.Equal(t, http.StatusForbidden, status)

	for body, code := range map[string]string{`{"ttl_seconds":5}`: "validation_failed", `{"ttl_seconds":99999}`: "validation_failed", `{"x":1}`: "validation_failed"} {
		_, p, _ := b.do(t, "POST", "/v1/members/alice/tokens", b.shop, body)
		require.Equal(t, code, p["code"], body)
	}
	_, p, _ = b.do(t, "POST", "/v1/members/nobody/tokens", b.shop, "")
	require.Equal(t, "not_found", p["code"])

	// An expired token is refused like an unknown one.
	_, err := b.ledger.Pool().Exec(context.Background(), "UPDATE member_tokens SET expires_at = now() - interval '1 second'")
	require.NoError(t, err)
	status, p, _ = b.get(t, "/v1/members/alice/balances", token)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, "unauthorized", p["code"])
}
