package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestProgramAnalytics works a small program through the API and checks every figure of the
// report against the default program's rules by hand.
func TestProgramAnalytics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, body := range []string{`{"id":"a"}`, `{"id":"b","referrer_id":"a"}`, `{"id":"c","referrer_id":"a"}`,
		`{"id":"d","referrer_id":"b"}`, `{"id":"e"}`} {
		status, m, _ := b.do(t, "POST", "/v1/members", b.shop, body)
		require.Equal(t, http.StatusCreated, status, m)
	}
	for _, ev := range []string{
		paidEvent("e1", "o1", "b", "2026-11-01T08:00:00Z"), // 100.00: b's first order
		`{"id":"e2","type":"order.paid","occurred_at":"2026-11-02T08:00:00Z","data":{"order_id":"o2","member_id":"b","amount":"50.00","currency":"CNY"}}`,
		`{"id":"e3","type":"order.paid","occurred_at":"2026-11-03T08:00:00Z","data":{"order_id":"o3","member_id":"d","amount":"200.00","currency":"CNY"}}`,
		`{"id":"e4","type":"order.paid","occurred_at":"2026-11-04T08:00:00Z","data":{"order_id":"o4","member_id":"e","amount":"30.00","currency":"CNY"}}`,
		`{"id":"e5","type":"order.refunded","occurred_at":"2026-11-05T08:00:00Z","data":{"order_id":"o1","refund_id":"r1","amount":"100.00"}}`,
	} {
		status, res, _ := b.do(t, "POST", "/v1/events", b.shop, ev)
		require.Equal(t, http.StatusCreated, status, res)
	}
	to := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	status, rep, _ := b.get(t, "/v1/reports/program?from=2026-10-01T00:00:00Z&to="+to, b.operator)
	require.Equal(t, http.StatusOK, status, rep)
	ratio := func(name string) []any {
		r := rep[name].(map[string]any)
		return []any{r["of"], r["over"], r["rate"]}
	}
	require.EqualValues(t, 5, rep["members"])
	require.EqualValues(t, 5, rep["new_members"])
	require.Equal(t, []any{2.0, 5.0, "0.4000"}, ratio("participation"), "a and b invited")
	require.Equal(t, []any{2.0, 3.0, "0.6667"}, ratio("invitation_conversion"), "of b, c, d: b and d bought")
	require.Equal(t, []any{2.0, 3.0, "0.6667"}, ratio("first_order"))
	require.Equal(t, []any{1.0, 2.0, "0.5000"}, ratio("repeat_purchase"), "b bought twice")
	require.EqualValues(t, 2, rep["newly_converted_customers"])
	var cny map[string]any
	for _, c := range rep["currencies"].([]any) {
		if c.(map[string]any)["currency"] == "CNY" {
			cny = c.(map[string]any)
		}
	}
	require.NotNil(t, cny, rep)
	// Referred orders: b's 100.00 and 50.00, d's 200.00 (e was not invited); b's first refunded.
	require.EqualValues(t, 3, cny["orders"])
	require.Equal(t, "350.00", cny["referred_gmv"])
	require.Equal(t, "100.00", cny["refunded"])
	// o1: a level1 5.00, first order bonus 5.00, milestone 10.00; o2: a level1 2.50;
	// o3: b level1 10.00, a level2 4.00, b first order bonus 5.00, b milestone 10.00 = 51.50.
	// The full refund of o1 claws back its level1 and first order bonus (milestones stay).
	require.Equal(t, "51.50", cny["rewards_granted"])
	require.Equal(t, "10.00", cny["rewards_clawed_back"])
	require.Equal(t, "41.50", cny["rewards_net"])
	require.Equal(t, "20.75", cny["customer_acquisition_cost"], "41.50 for 2 new customers")
	legs := map[string]string{}
	for _, l := range rep["rewards"].([]any) {
		l := l.(map[string]any)
		legs[l["currency"].(string)+" "+l["leg"].(string)] = l["net"].(string)
	}
	require.Equal(t, map[string]string{"CNY level1": "12.50", "CNY level2": "4.00", "CNY first_order_bonus": "5.00",
		"CNY milestone": "20.00", "PTS points": "250"}, legs)

	for _, q := range []string{"?from=x", "?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z"} {
		status, _, _ := b.get(t, "/v1/reports/program"+q, b.operator)
		require.Equal(t, http.StatusBadRequest, status, q)
	}
}
