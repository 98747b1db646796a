package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/httpapi"
)

// access is who may call a route. member: a member token for the member the path names (for a
// path without a member, the handler answers only that member's own things, 404 otherwise).
var access = map[string]string{
	"GET /healthz":                            "public",
	"GET /readyz":                             "public",
	"GET /metrics":                            "public",
	"GET /openapi.yaml":                       "public",
	"GET /v1/accounts/:code":                  "auditor",
	"GET /v1/reports/trial-balance":           "auditor",
	"POST /v1/members":                        "shop",
	"GET /v1/members/:id":                     "shop member auditor",
	"GET /v1/members/:id/balances":            "shop member auditor",
	"GET /v1/members/:id/statement":           "shop member auditor",
	"GET /v1/members/:id/referrals":           "shop member auditor",
	"POST /v1/members/:id/tokens":             "shop",
	"POST /v1/members/:id/points/redemptions": "shop",
	"POST /v1/events":                         "shop",
	"POST /v1/events/batch":                   "shop",
	"GET /v1/orders/:order_id":                "shop auditor",
	"GET /v1/program":                         "operator auditor",
	"PUT /v1/program":                         "operator",
	"GET /v1/program/versions":                "operator auditor",
	"POST /v1/members/:id/withdrawals":        "shop member",
	"GET /v1/members/:id/withdrawals":         "shop member operator auditor",
	"GET /v1/withdrawals":                     "operator auditor",
	"GET /v1/withdrawals/:id":                 "shop member operator auditor",
	"POST /v1/withdrawals/:id/cancel":         "shop member",
	"POST /v1/withdrawals/:id/approve":        "operator",
	"POST /v1/withdrawals/:id/reject":         "operator",
	"POST /v1/payout-batches":                 "operator",
	"GET /v1/payout-batches/:id":              "operator auditor",
	"POST /v1/payout-batches/:id/results":     "operator",
	"GET /v1/reports/payouts":                 "auditor operator",
	"GET /v1/journal":                         "auditor",
	"GET /v1/reports/checks":                  "auditor operator",
	"GET /v1/reports/income-statement":        "auditor operator",
	"GET /v1/reports/program":                 "auditor operator",
	"GET /v1/leaderboard":                     "shop member auditor operator",
	"POST /v1/campaigns":                      "operator",
	"GET /v1/campaigns/:id":                   "shop member auditor operator",
	"POST /v1/webhooks":                       "operator",
	"GET /v1/webhooks":                        "operator auditor",
	"GET /v1/webhooks/:id":                    "operator auditor",
	"DELETE /v1/webhooks/:id":                 "operator",
	"GET /v1/webhooks/:id/deliveries":         "operator auditor",
}

// TestAuthorizationMatrix calls every route as nobody, each role, a member token for the member the
// route names and one for another member, and checks who gets through. A route the server has and
// this table lacks fails the test: a new route must say who may call it.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.member(t, "alice")
	b.member(t, "bob")
	b.fund(t, "alice", "100.00")
	status, w := b.withdraw(t, b.shop, "alice", "wa", "20.00")
	require.Equal(t, 201, status, w)
	token := func(m string) string {
		_, tok, _ := b.do(t, "POST", "/v1/members/"+m+"/tokens", b.shop, "")
		return tok["token"].(string)
	}
	principals := map[string]string{"nobody": "", "shop": b.shop, "operator": b.operator, "auditor": b.auditor,
		"member": token("alice"), "other-member": token("bob")}
	fill := func(path string) string {
		id := "alice"
		switch {
		case strings.HasPrefix(path, "/v1/withdrawals/"):
			id = "wa"
		case strings.HasPrefix(path, "/v1/payout-batches/"):
			id = "none"
		}
		return strings.NewReplacer(":code", "member:alice:held", ":id", id, ":order_id", "none").Replace(path)
	}

	var routes []string
	for _, r := range httpapi.New(httpapi.Config{}).Routes() {
		if strings.HasPrefix(r.Name, "github.com/labstack/echo") || r.Method == "echo_route_any" {
			continue
		}
		route := r.Method + " " + r.Path
		_, ok := access[route]
		require.True(t, ok, "route %s has no entry in the authorization matrix", route)
		routes = append(routes, route)
	}
	require.Len(t, routes, len(access), "the matrix lists a route the server does not have")

	for _, route := range routes {
		method, path, _ := strings.Cut(route, " ")
		allowed := " " + access[route] + " "
		for who, key := range principals {
			// Bodies that are refused after authorization: what is checked here is who gets that far.
			status, body, _ := b.do(t, method, fill(path), key, `{"bogus": true}`)
			switch {
			case strings.Contains(allowed, " public "):
				require.NotContains(t, []int{401, 403}, status, "%s as %s: %v", route, who, body)
			case who == "nobody":
				require.Equal(t, http.StatusUnauthorized, status, "%s as nobody: %v", route, body)
			case who == "other-member" && strings.Contains(allowed, " member ") && strings.HasPrefix(path, "/v1/withdrawals/:id"):
				// Past the role check, the handler hides another member's withdrawal (404), unless
				// the body is refused first (400): either way nothing of it is shown or changed.
				require.Contains(t, []int{http.StatusNotFound, http.StatusBadRequest}, status, "%s as another member: %v", route, body)
			case who == "other-member" && strings.Contains(allowed, " member ") && !strings.Contains(path, "/members/"):
				// Boards and campaigns are the same for every member (a token sees its own standing).
				require.NotContains(t, []int{401, 403}, status, "%s as another member: %v", route, body)
			case who == "other-member":
				require.Equal(t, http.StatusForbidden, status, "%s as another member: %v", route, body)
			case strings.Contains(allowed, " "+who+" "):
				require.NotContains(t, []int{401, 403}, status, "%s as %s: %v", route, who, body)
			default:
				require.Equal(t, http.StatusForbidden, status, "%s as %s: %v", route, who, body)
			}
		}
	}
	require.Equal(t, "80.00", b.balance(t, "alice", "available"), "no call changed alice's money")
}
