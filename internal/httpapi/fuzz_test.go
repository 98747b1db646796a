package httpapi_test

import (
	"strings"
	"testing"
)

// fuzzTargets are the endpoints whose bodies are fuzzed, with the key that may call each.
var fuzzTargets = []struct{ path, role string }{
	{"/v1/events", "shop"},
	{"/v1/events/batch", "shop"},
	{"/v1/members", "shop"},
	{"/v1/members/m/points/redemptions", "shop"},
	{"/v1/members/m/withdrawals", "shop"},
	{"/v1/withdrawals/w0/approve", "operator"},
	{"/v1/withdrawals/w0/cancel", "shop"},
	{"/v1/payout-batches", "operator"},
	{"/v1/payout-batches/b0/results", "operator"},
	{"/v1/program", "operator"},
}

// FuzzDecoders sends arbitrary bodies to every endpoint that decodes one, through the real server
// and database. Property: no input gives a 5xx, and an input that is refused writes nothing.
// `make test` runs the seeds; `make fuzz` searches for a while.
func FuzzDecoders(f *testing.F) {
	seeds := []string{
		`{"id":"e1","type":"order.paid","occurred_at":"2026-11-01T08:00:00Z","data":{"order_id":"o1","member_id":"m","amount":"99.99","currency":"CNY"}}`,
		`{"events":[{"id":"e2","type":"order.refunded","occurred_at":"2026-11-01T08:00:00Z","data":{"order_id":"o1","refund_id":"r1","amount":"1.00"}}]}`,
		`{"id":"x","referrer_id":"m"}`, `{"id":"x","referral_code":"ABCDEF"}`,
		`{"id":"r1","points":1,"reason":"coupon"}`,
		`{"id":"w1","amount":"10.00","currency":"CNY","destination":{"type":"bank","account":"6222","name":"Li"}}`,
		`{"reason":"ok"}`, ``, `{"currency":"CNY"}`, `{"items":[{"item_id":1,"status":"paid"}]}`,
		`{"currency":"CNY","hold_period":"1h","rounding":"down","level_rates":["0.1"],"first_order_bonus":"0","max_rebate_ratio":"1","points":{"per_unit":"0","validity":"1h"},"withdrawal":{"min":"1","max":"2","daily_count":1,"daily_amount":"1","monthly_amount":"1","fee_rate":"0","fee_min":"0","review_above":"1"}}`,
		`{"id":"\u0000"}`, `[]`, `null`, `{"id":1e309}`, `{"amount":"-0.00"}`, `{"id":"` + strings.Repeat("é", 300) + `"}`,
		"\xff\xfe", `{"a":{"b":{"c":[[[[[[]]]]]]}}}`, `{"occurred_at":"9999-12-31T23:59:59Z"}`,
	}
	for i, s := range seeds {
		for t := range fuzzTargets {
			if t%3 == i%3 {
				f.Add(uint8(t), []byte(s))
			}
		}
	}
	b := setupWith(f, setupOpts{})
	_, _, _ = b.do(f, "POST", "/v1/members", b.shop, `{"id":"m"}`)
	keys := map[string]string{"shop": b.shop, "operator": b.operator}
	f.Fuzz(func(t *testing.T, target uint8, body []byte) {
		tg := fuzzTargets[int(target)%len(fuzzTargets)]
		before := b.entries(t)
		method := "POST"
		if tg.path == "/v1/program" {
			method = "PUT"
		}
		status, resp, _ := b.do(t, method, tg.path, keys[tg.role], string(body))
		if status >= 500 {
			t.Fatalf("%s %q: %d %v", tg.path, body, status, resp)
		}
		if status >= 400 && b.entries(t) != before {
			t.Fatalf("%s %q was refused (%d) but wrote an entry", tg.path, body, status)
		}
	})
}
