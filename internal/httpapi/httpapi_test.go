package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	"riverqueue.com/riverui"

	"github.com/rebate-ledger/rebate/docs"
	"github.com/rebate-ledger/rebate/internal/auth"
	"github.com/rebate-ledger/rebate/internal/campaign"
	"github.com/rebate-ledger/rebate/internal/clock"
	"github.com/rebate-ledger/rebate/internal/httpapi"
	"github.com/rebate-ledger/rebate/internal/jobs"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/notify"
	"github.com/rebate-ledger/rebate/internal/pgtest"
	"github.com/rebate-ledger/rebate/internal/rebate"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/wallet"
	"github.com/rebate-ledger/rebate/internal/wallet/csvbank"
	"github.com/rebate-ledger/rebate/internal/wallet/simulated"
)

type testBundle struct {
	srv       *httptest.Server
	pool      *pgxpool.Pool
	ledger    *ledger.Ledger
	engine    *rebate.Engine
	wallet    *wallet.Wallet
	sim       *simulated.Provider
	clock     *clock.Manual
	campaigns *campaign.Service
	auditor   string
	shop      string
	operator  string
}

type setupOpts struct {
	// workers runs River's workers (release, batch submission, the simulated provider's reports);
	// without them jobs are inserted and not worked.
	workers bool
	// provider is the wallet's payout provider (default: the CSV bank file).
	provider wallet.Provider
	// sim is the simulated provider inside provider, when provider wraps one.
	sim *simulated.Provider
	// asService connects as the serving login role (least privilege), not the superuser.
	asService bool
	// rateLimit and rateBurst are the server's per-key rate limit (0: none).
	rateLimit float64
	rateBurst int
	// now is where the manual clock of the engine, the wallet and the handlers stands.
	now time.Time
	// riverUI mounts River's UI at /riverui.
	riverUI bool
	// alone decides each withdrawal request in its own transaction (serve --coalesce-workers 0);
	// by default concurrent requests are grouped, as serve does.
	alone bool
}

func setup(t *testing.T) *testBundle { return setupWith(t, setupOpts{}) }

func setupWith(t testing.TB, o setupOpts) *testBundle {
	t.Helper()
	var pool *pgxpool.Pool
	if o.asService {
		var err error
		pool, err = store.Open(context.Background(), pgtest.AsService(pgtest.NewDatabase(t)), 40)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
	} else {
		pool = pgtest.New(t)
	}
	l := ledger.New(pool)
	engine := rebate.NewEngine(pool, l)
	if o.now.IsZero() {
		// A fixed day, so that the events these tests send (dated in 2026) stay inside the
		// engine's window of accepted business times whatever day the tests run.
		o.now = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	}
	clk := clock.NewManual(o.now)
	engine.SetClock(clk)
	if o.provider == nil {
		o.provider = csvbank.Provider{}
	}
	sim := o.sim
	if sim == nil {
		sim, _ = o.provider.(*simulated.Provider)
	}
	w := wallet.New(pool, l, o.provider)
	w.SetClock(clk)
	if !o.alone {
		t.Cleanup(w.Coalesce(4, 64))
	}
	// Webhooks go to the tests' loopback receivers; the dispatcher reads the system clock (the
	// outbox stamps rows with the database's).
	dispatcher := notify.NewDispatcher(pool, notify.Options{AllowLocal: true, Timeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	camps := campaign.New(pool, l)
	camps.SetClock(clk)
	rc, err := jobs.NewClient(pool, l, engine, jobs.Config{Workers: o.workers, Wallet: w, Simulated: sim, Logger: slog.New(slog.DiscardHandler),
		Webhooks: dispatcher, WebhookEvery: 100 * time.Millisecond, Campaigns: camps})
	require.NoError(t, err)
	if o.workers {
		require.NoError(t, rc.Start(context.Background()))
		t.Cleanup(func() { _ = rc.Stop(context.Background()) })
	}
	var ui http.Handler
	if o.riverUI {
		h, err := riverui.NewHandler(&riverui.HandlerOpts{Endpoints: riverui.NewEndpoints(rc, nil), Logger: slog.New(slog.DiscardHandler), Prefix: "/riverui"})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		require.NoError(t, h.Start(ctx))
		ui = h
	}
	e := httpapi.New(httpapi.Config{RiverUI: ui, Pool: pool, Ledger: l, Engine: engine, Wallet: w, Clock: clk, BodyLimit: "1M", Logger: slog.New(slog.DiscardHandler),
		Webhooks: notify.NewWebhooks(pool, clk, true), Campaigns: camps,
		RateLimit: o.rateLimit, RateBurst: o.rateBurst})
	srv := httptest.NewServer(validated(t, e))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	auditor, err := auth.CreateKey(ctx, pool, auth.Auditor, "test-auditor")
	require.NoError(t, err)
	shop, err := auth.CreateKey(ctx, pool, auth.Shop, "test-shop")
	require.NoError(t, err)
	operator, err := auth.CreateKey(ctx, pool, auth.Operator, "test-operator")
	require.NoError(t, err)
	return &testBundle{srv: srv, pool: pool, ledger: l, engine: engine, wallet: w, sim: sim, clock: clk, campaigns: camps,
		auditor: auditor, shop: shop, operator: operator}
}

func (b *testBundle) get(t *testing.T, path, key string) (int, map[string]any, http.Header) {
	t.Helper()
	return b.do(t, http.MethodGet, path, key, "")
}

func (b *testBundle) do(t testing.TB, method, path, key, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	if strings.Contains(resp.Header.Get("Content-Type"), "json") {
		require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	}
	return resp.StatusCode, out, resp.Header
}

func post(t *testing.T, l *ledger.Ledger, key, member, amount string) ledger.Entry {
	t.Helper()
	a := money.MustParse(amount, money.CNY)
	e, err := l.PostTx(context.Background(), ledger.EntryRequest{Key: key, Kind: "accrual", OccurredAt: time.Now(),
		Postings: []ledger.PostingRequest{
			{Account: ledger.RebateExpense, Side: ledger.Debit, Amount: a},
			{Account: ledger.MemberAccount(member, "held"), Side: ledger.Credit, Amount: a},
		}})
	require.NoError(t, err)
	return e
}

func TestOperations(t *testing.T) {
	t.Parallel()
	b := setup(t)
	status, body, _ := b.get(t, "/healthz", "")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "ok", body["status"])

	status, body, _ = b.get(t, "/readyz", "")
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, "ready", body["status"])

	resp, err := http.Get(b.srv.URL + "/metrics")
	require.NoError(t, err)
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(m), "rebate_http_requests_total")

	resp, err = http.Get(b.srv.URL + "/openapi.yaml")
	require.NoError(t, err)
	y, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, docs.OpenAPI, y)
}

func TestAccountsAndTrialBalance(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e1 := post(t, b.ledger, "k1", "u1", "10.50")
	post(t, b.ledger, "k2", "u1", "0.25")

	t.Run("AccountNow", func(t *testing.T) {
		status, body, hdr := b.get(t, "/v1/accounts/member:u1:held", b.auditor)
		require.Equal(t, http.StatusOK, status, body)
		require.Contains(t, hdr.Get("Content-Type"), "application/json")
		bal := body["balances"].([]any)[0].(map[string]any)
		require.Equal(t, "10.75", bal["balance"])
		require.Equal(t, "CNY", bal["currency"])
		require.Equal(t, "liability", bal["kind"])
	})

	t.Run("AccountAsOf", func(t *testing.T) {
		status, body, _ := b.get(t, "/v1/accounts/member:u1:held?as_of="+e1.RecordedAt.Format(time.RFC3339Nano), b.auditor)
		require.Equal(t, http.StatusOK, status, body)
		require.Equal(t, "10.50", body["balances"].([]any)[0].(map[string]any)["balance"])
		status, body, _ = b.get(t, "/v1/accounts/platform:rebate_expense?as_of=2000-01-01T00:00:00Z", b.auditor)
		require.Equal(t, http.StatusOK, status, body)
		require.Equal(t, "0.00", body["balances"].([]any)[0].(map[string]any)["balance"])
	})

	t.Run("TrialBalance", func(t *testing.T) {
		status, body, _ := b.get(t, "/v1/reports/trial-balance", b.auditor)
		require.Equal(t, http.StatusOK, status, body)
		tot := body["totals"].([]any)[0].(map[string]any)
		require.Equal(t, "10.75", tot["debit"])
		require.Equal(t, "10.75", tot["credit"])
		require.Equal(t, true, tot["balanced"])
		require.Len(t, body["accounts"], 2)
		status, body, _ = b.get(t, "/v1/reports/trial-balance?as_of="+e1.RecordedAt.Format(time.RFC3339Nano), b.auditor)
		require.Equal(t, http.StatusOK, status, body)
		require.Equal(t, "10.50", body["totals"].([]any)[0].(map[string]any)["debit"])
	})

	t.Run("BadInputIsAProblem", func(t *testing.T) {
		for _, tc := range []struct {
			path, key, code string
			status          int
		}{
			{"/v1/accounts/member:u1:held", "", "unauthorized", 401},
			{"/v1/accounts/member:u1:held", "rk_not-a-real-key", "unauthorized", 401},
			{"/v1/accounts/member:u1:held", "garbage", "unauthorized", 401},
			{"/v1/accounts/member:u1:held", b.shop, "forbidden", 403},
			{"/v1/accounts/member:u1:held?as_of=yesterday", b.auditor, "validation_failed", 400},
			{"/v1/accounts/member:u1:held?as_of=2026-13-01T00:00:00Z", b.auditor, "validation_failed", 400},
			{"/v1/accounts/member:nobody:held", b.auditor, "not_found", 404},
			{"/v1/accounts/platform:bank", b.auditor, "not_found", 404},
			{"/v1/accounts/'%3B%20DROP%20TABLE%20postings", b.auditor, "not_found", 404},
			{"/v1/reports/trial-balance?as_of=%00", b.auditor, "validation_failed", 400},
			{"/v1/nothing-here", b.auditor, "not_found", 404},
		} {
			status, body, hdr := b.get(t, tc.path, tc.key)
			require.Equal(t, tc.status, status, "%s: %v", tc.path, body)
			require.Equal(t, tc.code, body["code"], tc.path)
			require.Equal(t, "application/problem+json", hdr.Get("Content-Type"), tc.path)
			require.NotEmpty(t, body["request_id"])
		}
		req, _ := http.NewRequest(http.MethodDelete, b.srv.URL+"/v1/accounts/member:u1:held", nil)
		req.Header.Set("Authorization", "Bearer "+b.auditor)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
		req, _ = http.NewRequest(http.MethodGet, b.srv.URL+"/v1/reports/trial-balance", strings.NewReader(strings.Repeat("x", 2<<20)))
		req.Header.Set("Authorization", "Bearer "+b.auditor)
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	})
}

// TestOpenAPIMatchesRoutes keeps docs/openapi.yaml true: every route the server has is documented,
// and every documented path and method exists.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	var spec struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(docs.OpenAPI, &spec))
	var documented []string
	for path, ops := range spec.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	e := httpapi.New(httpapi.Config{})
	param := regexp.MustCompile(`:([a-z_]+)`)
	var served []string
	for _, r := range e.Routes() {
		if strings.HasPrefix(r.Name, "github.com/labstack/echo") || r.Method == "echo_route_any" {
			continue
		}
		served = append(served, r.Method+" "+param.ReplaceAllString(r.Path, "{$1}"))
	}
	sort.Strings(documented)
	sort.Strings(served)
	require.Equal(t, documented, served)
}

// TestRiverUIIsForOperators: River's UI and its API answer operators only.
func TestRiverUIIsForOperators(t *testing.T) {
	t.Parallel()
	b := setupWith(t, setupOpts{riverUI: true})
	status, _, _ := b.get(t, "/riverui/", "")
	require.Equal(t, http.StatusUnauthorized, status)
	for _, key := range []string{b.shop, b.auditor} {
		status, _, _ = b.get(t, "/riverui/", key)
		require.Equal(t, http.StatusForbidden, status)
	}
	req, err := http.NewRequest("GET", b.srv.URL+"/riverui/", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+b.operator)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(page), "<html")

	// An invited member's paid order inserts its release job (no workers run here: it waits).
	b.member(t, "ui-ref")
	status, m, _ := b.do(t, "POST", "/v1/members", b.shop, `{"id":"ui-member","referrer_id":"ui-ref"}`)
	require.Equal(t, http.StatusCreated, status, m)
	status, _, _ = b.do(t, "POST", "/v1/events", b.shop, paidEvent("ui-e1", "ui-o1", "ui-member", "2026-11-01T08:00:00Z"))
	require.Equal(t, http.StatusCreated, status)
	var kinds []string
	for _, state := range []string{"available", "scheduled"} {
		status, jobs, _ := b.get(t, "/riverui/api/jobs?limit=20&state="+state, b.operator)
		require.Equal(t, http.StatusOK, status, jobs)
		for _, j := range jobs["data"].([]any) {
			kinds = append(kinds, j.(map[string]any)["kind"].(string))
		}
	}
	require.Contains(t, kinds, "rebate.release")
}
