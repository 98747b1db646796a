package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/httpapi"
)

func paidEvent(id, order, member, at string) string {
	return `{"id":"` + id + `","type":"order.paid","occurred_at":"` + at + `","data":{"order_id":"` + order +
		`","member_id":"` + member + `","amount":"100.00","currency":"CNY"}}`
}

// TestNULIsAValidationErrorForThatInputAlone: PostgreSQL's text cannot hold NUL; every place a
// client string reaches answers 400, and inside a batch only the event that carries it is refused.
func TestNULIsAValidationErrorForThatInputAlone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.member(t, "ref")
	before := b.entries(t)
	for _, tc := range []struct{ method, path, key, body string }{
		{"POST", "/v1/events", b.shop, paidEvent(`e\u0000`, "o1", "ref", "2026-11-01T08:00:00Z")},
		{"POST", "/v1/events", b.shop, paidEvent("e1", `o\u0000`, "ref", "2026-11-01T08:00:00Z")},
		{"POST", "/v1/events", b.shop, paidEvent("e1", "o1", `ref\u0000`, "2026-11-01T08:00:00Z")},
		{"POST", "/v1/members", b.shop, `{"id":"x\u0000"}`},
		{"POST", "/v1/members", b.shop, `{"id":"x","referral_code":"AB\u0000CD"}`},
		{"POST", "/v1/members", b.shop, `{"id":"x","referrer_id":"r\u0000"}`},
		{"POST", "/v1/members/ref/points/redemptions", b.shop, `{"id":"r1","points":1,"reason":"a\u0000b"}`},
		{"GET", "/v1/orders/o%00x", b.shop, ""},
		{"GET", "/v1/members/ref%00/balances", b.shop, ""},
		{"GET", "/v1/accounts/member:ref%00:held", b.auditor, ""},
		{"GET", "/v1/reports/trial-balance?as_of=%00", b.auditor, ""},
		{"GET", "/v1/withdrawals/w%00", b.shop, ""},
	} {
		status, body, _ := b.do(t, tc.method, tc.path, tc.key, tc.body)
		require.Equal(t, 400, status, "%s %s %s: %v", tc.method, tc.path, tc.body, body)
		require.Equal(t, "validation_failed", body["code"])
	}
	// A literal backslash before u0000 is text, not NUL.
	status, body, _ := b.do(t, "POST", "/v1/members/ref/points/redemptions", b.shop, `{"id":"r2","points":1,"reason":"a\\u0000b"}`)
	require.NotEqual(t, 400, status, body)
	require.NotEqual(t, 500, status, body)

	status, res, _ := b.do(t, "POST", "/v1/events/batch", b.shop, `{"events":[`+paidEvent("b1", "bo1", "ref", "2026-11-01T08:00:00Z")+`,`+
		paidEvent(`b\u00002`, "bo2", "ref", "2026-11-01T08:00:00Z")+`,`+paidEvent("b3", "bo3", "ref", "2026-11-01T08:00:00Z")+`]}`)
	require.Equal(t, 200, status, res)
	var statuses []any
	for _, r := range res["results"].([]any) {
		statuses = append(statuses, r.(map[string]any)["status"])
	}
	require.Equal(t, []any{201.0, 400.0, 201.0}, statuses)
	require.Equal(t, before, b.entries(t), "orders without an upline earn nothing: no entry either way")
}

// TestPathParametersAreUnescaped: ids that are valid in a body are reachable in a path, as
// encodeURIComponent sends them.
func TestPathParametersAreUnescaped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.member(t, "A")
	status, m, _ := b.do(t, "POST", "/v1/members", b.shop, `{"id":"B","referrer_id":"A"}`)
	require.Equal(t, 201, status, m)
	for _, order := range []string{"a+b", "shop/2026/1", "100%", "x y"} {
		status, ev, _ := b.do(t, "POST", "/v1/events", b.shop, paidEvent("e-"+order, order, "B", "2026-11-01T08:00:00Z"))
		require.Equal(t, 201, status, ev)
	}
	for path, want := range map[string]string{
		"/v1/orders/a%2Bb": "a+b", "/v1/orders/shop%2F2026%2F1": "shop/2026/1", "/v1/orders/100%25": "100%", "/v1/orders/x%20y": "x y",
		"/v1/orders/a+b": "a+b",
	} {
		status, o, _ := b.get(t, path, b.shop)
		require.Equal(t, 200, status, "%s: %v", path, o)
		require.Equal(t, want, o["order_id"], path)
	}
	status, acct, _ := b.get(t, "/v1/accounts/member%3AA%3Aheld", b.auditor)
	require.Equal(t, 200, status, acct)
	require.Equal(t, "member:A:held", acct["code"])
}

func TestBusinessTimesOutsideTheWindowAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.member(t, "m")
	for _, at := range []string{"9999-12-31T23:59:59Z", "2999-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "2020-01-01T00:00:00Z", "2026-12-07T10:00:01Z"} {
		status, body, _ := b.do(t, "POST", "/v1/events", b.shop, paidEvent("e-"+at, "o-"+at, "m", at))
		require.Equal(t, 400, status, "%s: %v", at, body)
		require.Contains(t, body["detail"], "window", at)
	}
	// The edges of the window are inside it (the test clock stands at 2026-12-06T10:00:00Z).
	for _, at := range []string{"2026-12-07T10:00:00Z", "2025-11-01T10:00:00Z"} {
		status, body, _ := b.do(t, "POST", "/v1/events", b.shop, paidEvent("e-"+at, "o-"+at, "m", at))
		require.Equal(t, 201, status, "%s: %v", at, body)
	}
}

func TestARetryNamingTheSameInviterAnotherWayReplays(t *testing.T) {
	t.Parallel()
	b := setup(t)
	status, inviter, _ := b.do(t, "POST", "/v1/members", b.shop, `{"id":"inviter"}`)
	require.Equal(t, 201, status, inviter)
	b.member(t, "other")
	code := inviter["referral_code"].(string)
	status, m, _ := b.do(t, "POST", "/v1/members", b.shop, `{"id":"new","referral_code":"`+code+`"}`)
	require.Equal(t, 201, status, m)
	status, again, hdr := b.do(t, "POST", "/v1/members", b.shop, `{"id":"new","referrer_id":"inviter"}`)
	require.Equal(t, 201, status, again)
	require.Equal(t, "true", hdr.Get("Idempotent-Replayed"))
	require.Equal(t, m["referral_code"], again["referral_code"])
	for _, body := range []string{`{"id":"new","referrer_id":"other"}`, `{"id":"new"}`, `{"id":"new","referral_code":"ZZZZZZ"}`} {
		status, p, _ := b.do(t, "POST", "/v1/members", b.shop, body)
		require.Equal(t, 409, status, "%s: %v", body, p)
	}
}

func TestProgramVersionsAreNotBackDated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	status, cur, _ := b.get(t, "/v1/program", b.operator)
	require.Equal(t, 200, status, cur)
	// The read shape goes back as it came (version and effective_at are ignored).
	status, raw, _ := b.do(t, "GET", "/v1/program", b.operator, "")
	require.Equal(t, 200, status)
	body := mustJSON(t, raw)
	status, put, _ := b.do(t, "PUT", "/v1/program", b.operator, body)
	require.Equal(t, 201, status, put)
	status, p, _ := b.do(t, "PUT", "/v1/program?effective_at=2026-12-01T00:00:00Z", b.operator, body)
	require.Equal(t, 400, status, p)
	require.Contains(t, p["detail"], "past")
	status, p, _ = b.do(t, "PUT", "/v1/program?effective_at=2027-02-01T00:00:00Z", b.operator, body)
	require.Equal(t, 201, status, p)
	// Still in the future, but before the newest version: refused.
	status, p, _ = b.do(t, "PUT", "/v1/program?effective_at=2027-01-01T00:00:00Z", b.operator, body)
	require.Equal(t, 400, status, p)
	require.Contains(t, p["detail"], "newest")
}

func TestProblemDetailsAreForPeople(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.member(t, "m")
	long := strings.Repeat("x", 10_000)
	for _, tc := range []struct{ path, body string }{
		{"/v1/members", `[]`},
		{"/v1/members", `{"id":5}`},
		{"/v1/members", `{"id":"` + long + `"}`},
		{"/v1/events", `{"id":"e","type":"order.paid","occurred_at":"2026-11-01T08:00:00Z","data":{"order_id":"o","member_id":"m","amount":12.5,"currency":"CNY"}}`},
		{"/v1/events", `{"id":"e","type":"order.paid","occurred_at":"2026-11-01T08:00:00Z","data":[]}`},
		{"/v1/events", `{"id":"` + long + `","type":"x","occurred_at":"2026-11-01T08:00:00Z","data":{}}`},
		{"/v1/members/m/points/redemptions", `{"id":"r","points":"ten"}`},
		{"/v1/members/m/withdrawals", `{"id":"w","amount":"1","currency":"CNY","destination":"` + long + `"}`},
	} {
		status, p, _ := b.do(t, "POST", tc.path, b.shop, tc.body)
		require.Equal(t, 400, status, "%.100s: %v", tc.body, p)
		d := p["detail"].(string)
		require.LessOrEqual(t, len(d), 310, "%.100s", tc.body)
		for _, leak := range []string{"Go value", "Go struct", "json:", "unmarshal", "httpapi.", "rebate."} {
			require.NotContains(t, d, leak, "%.100s: %s", tc.body, d)
		}
	}
}

func TestBearerSchemeIsCaseInsensitiveAndChallenged(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, scheme := range []string{"bearer", "BEARER", "Bearer"} {
		req, _ := http.NewRequest("GET", b.srv.URL+"/v1/reports/trial-balance", nil)
		req.Header.Set("Authorization", scheme+" "+b.auditor)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, scheme)
	}
	for _, h := range []string{"", "Basic abc", "Bearer", "Bearer rk_nope"} {
		req, _ := http.NewRequest("GET", b.srv.URL+"/v1/reports/trial-balance", nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 401, resp.StatusCode, h)
		require.Equal(t, `Bearer realm="rebate"`, resp.Header.Get("WWW-Authenticate"), h)
	}
}

func TestReadyzDoesNotShowDatabaseErrors(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), "postgres://secretuser:hunter2@127.0.0.1:1/nodb?connect_timeout=1")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Pool: pool, Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/readyz")
	require.NoError(t, err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 503, resp.StatusCode)
	require.Contains(t, string(raw), "database unreachable")
	for _, leak := range []string{"secretuser", "hunter2", "127.0.0.1", "nodb", "dial"} {
		require.NotContains(t, string(raw), leak)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// TestAnUnreachableDatabaseIs503WithRetryAfter: a connection-level failure is "retry later", not an
// internal error.
func TestAnUnreachableDatabaseIs503WithRetryAfter(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), "postgres://u:p@127.0.0.1:1/x?connect_timeout=1")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Pool: pool, Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("GET", srv.URL+"/v1/program", nil)
	req.Header.Set("Authorization", "Bearer rk_anything")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 503, resp.StatusCode, string(raw))
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	require.Contains(t, string(raw), `"code":"unavailable"`)
}

func TestRateLimitsArePerKey(t *testing.T) {
	t.Parallel()
	b := setupWith(t, setupOpts{rateLimit: 0.5, rateBurst: 3})
	for i := range 3 {
		status, body, _ := b.get(t, "/v1/reports/trial-balance", b.auditor)
		require.Equal(t, 200, status, "request %d: %v", i, body)
	}
	status, body, hdr := b.get(t, "/v1/reports/trial-balance", b.auditor)
	require.Equal(t, 429, status, body)
	require.Equal(t, "rate_limited", body["code"])
	require.Equal(t, "2", hdr.Get("Retry-After"), "one token every two seconds")
	status, body, _ = b.get(t, "/v1/program", b.operator)
	require.Equal(t, 200, status, "another key has its own bucket: %v", body)
	status, _, _ = b.get(t, "/healthz", "")
	require.Equal(t, 200, status, "unauthenticated operations are not limited per key")
}
