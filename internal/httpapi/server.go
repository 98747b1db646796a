// Package httpapi is the HTTP face of the service: echo routes, authentication, request and response
// types, and the one place errors become problem+json. Handlers are thin: decode, call the domain,
// encode; no SQL and no money math here.
package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rebate-ledger/rebate/docs"
	"github.com/rebate-ledger/rebate/internal/auth"
	"github.com/rebate-ledger/rebate/internal/campaign"
	"github.com/rebate-ledger/rebate/internal/clock"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/metrics"
	"github.com/rebate-ledger/rebate/internal/notify"
	"github.com/rebate-ledger/rebate/internal/rebate"
	"github.com/rebate-ledger/rebate/internal/wallet"
)

// Config wires the server to its dependencies.
type Config struct {
	Pool   *pgxpool.Pool
	Ledger *ledger.Ledger
	Engine *rebate.Engine
	Wallet *wallet.Wallet
	// RiverUI, when set, is River's own UI (riverqueue.com/riverui), mounted at /riverui for
	// operators: by their bearer key, or by their console session (ConsoleRole).
	RiverUI http.Handler
	// ConsoleRole answers the role of a request's console session (internal/console), or an error
	// when it has none.
	ConsoleRole func(r *http.Request) (auth.Role, error)
	// Campaigns answers leaderboards and runs campaigns.
	Campaigns *campaign.Service
	// Webhooks keeps the webhook endpoints; nil makes one that refuses local addresses.
	Webhooks *notify.Webhooks
	// Clock is "now" for business rules (program versions, redemptions); nil means the system clock.
	Clock  clock.Clock
	Logger *slog.Logger
	// Ready reports extra readiness conditions (River running); nil means none.
	Ready func(ctx context.Context) error
	// BodyLimit is the largest request body accepted, e.g. "1M".
	BodyLimit string
	// RequestTimeout bounds each request's handler.
	RequestTimeout time.Duration
	// RateLimit is the requests per second each API key (or member token's member) may make, with
	// bursts of RateBurst; 0 turns the limit off (as the benchmarks' servers have it).
	RateLimit float64
	RateBurst int
	// PayoutBatchMax is the most items a batch cut through the API holds (0: the wallet's default).
	PayoutBatchMax int
	// KeyCacheTTL is how long a found API key is trusted without a database lookup (0: never);
	// a revoked key keeps working that long (auth.KeyCache).
	KeyCacheTTL time.Duration
}

// New builds the echo server with every route.
func New(cfg Config) *echo.Echo {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Webhooks == nil {
		cfg.Webhooks = notify.NewWebhooks(cfg.Pool, cfg.Clock, false)
	}
	if cfg.Campaigns == nil {
		cfg.Campaigns = campaign.New(cfg.Pool, cfg.Ledger) // boards only: creating a campaign needs River
	}
	if cfg.BodyLimit == "" {
		cfg.BodyLimit = "1M"
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	s := &server{cfg: cfg, keys: auth.NewKeyCache(cfg.KeyCacheTTL), limiter: newKeyLimiter(cfg.RateLimit, cfg.RateBurst)}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(middleware.RequestID())
	e.Use(s.observe)
	e.Use(middleware.Recover())
	e.Use(middleware.BodyLimit(cfg.BodyLimit))
	e.Use(cleanParams)
	e.Use(middleware.ContextTimeoutWithConfig(middleware.ContextTimeoutConfig{Timeout: cfg.RequestTimeout,
		// A journal export streams for as long as the journal is long; the client's going away ends it.
		Skipper: func(c echo.Context) bool { return c.Path() == "/v1/journal" }}))

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.Handler()))
	e.GET("/openapi.yaml", s.openapi)

	if cfg.RiverUI != nil {
		// River's UI (its pages and its JSON API) for operators: jobs, queues, retries.
		ui := echo.WrapHandler(cfg.RiverUI)
		e.Any("/riverui", ui, s.operatorOrConsole)
		e.Any("/riverui/*", ui, s.operatorOrConsole)
	}

	// Authentication is per route rather than on the group, so that an unknown method on a known
	// path is 405 and an unknown path 404, as for any client.
	v1 := e.Group("/v1")
	v1.GET("/accounts/:code", s.getAccount, s.authenticate, allow(auth.Auditor))
	v1.GET("/reports/trial-balance", s.getTrialBalance, s.authenticate, allow(auth.Auditor))
	v1.POST("/members", s.postMember, s.authenticate, allow(auth.Shop))
	v1.GET("/members/:id", s.getMember, s.authenticate, allow(auth.Shop, auth.Member, auth.Auditor))
	v1.GET("/members/:id/balances", s.getMemberBalances, s.authenticate, allow(auth.Shop, auth.Member, auth.Auditor))
	v1.GET("/members/:id/statement", s.getStatement, s.authenticate, allow(auth.Shop, auth.Member, auth.Auditor))
	v1.GET("/members/:id/referrals", s.getReferrals, s.authenticate, allow(auth.Shop, auth.Member, auth.Auditor))
	v1.POST("/members/:id/tokens", s.postMemberToken, s.authenticate, allow(auth.Shop))
	v1.POST("/members/:id/points/redemptions", s.postRedemption, s.authenticate, allow(auth.Shop))
	v1.POST("/events", s.postEvent, s.authenticate, allow(auth.Shop))
	v1.POST("/events/batch", s.postEventBatch, s.authenticate, allow(auth.Shop))
	v1.GET("/orders/:order_id", s.getOrder, s.authenticate, allow(auth.Shop, auth.Auditor))
	v1.GET("/program", s.getProgram, s.authenticate, allow(auth.Operator, auth.Auditor))
	v1.PUT("/program", s.putProgram, s.authenticate, allow(auth.Operator))
	v1.GET("/program/versions", s.getProgramVersions, s.authenticate, allow(auth.Operator, auth.Auditor))

	v1.POST("/members/:id/withdrawals", s.postWithdrawal, s.authenticate, allow(auth.Shop, auth.Member))
	v1.GET("/members/:id/withdrawals", s.getMemberWithdrawals, s.authenticate, allow(auth.Shop, auth.Member, auth.Operator, auth.Auditor))
	v1.GET("/withdrawals", s.getWithdrawals, s.authenticate, allow(auth.Operator, auth.Auditor))
	// A member token reaches these routes for any id; the handlers answer only its own withdrawals.
	v1.GET("/withdrawals/:id", s.getWithdrawal, s.authenticate, allowOwnCheckedByHandler(auth.Shop, auth.Member, auth.Operator, auth.Auditor))
	v1.POST("/withdrawals/:id/cancel", s.act(wallet.Cancel), s.authenticate, allowOwnCheckedByHandler(auth.Shop, auth.Member))
	v1.POST("/withdrawals/:id/approve", s.act(wallet.Approve), s.authenticate, allow(auth.Operator))
	v1.POST("/withdrawals/:id/reject", s.act(wallet.Reject), s.authenticate, allow(auth.Operator))
	v1.POST("/payout-batches", s.postPayoutBatch, s.authenticate, allow(auth.Operator))
	v1.GET("/payout-batches/:id", s.getPayoutBatch, s.authenticate, allow(auth.Operator, auth.Auditor))
	v1.POST("/payout-batches/:id/results", s.postPayoutResults, s.authenticate, allow(auth.Operator))
	v1.GET("/reports/payouts", s.getPayoutReport, s.authenticate, allow(auth.Auditor, auth.Operator))
	v1.GET("/journal", s.getJournal, s.authenticate, allow(auth.Auditor))
	v1.GET("/reports/checks", s.getChecks, s.authenticate, allow(auth.Auditor, auth.Operator))
	v1.GET("/reports/income-statement", s.getIncomeStatement, s.authenticate, allow(auth.Auditor, auth.Operator))
	v1.GET("/reports/program", s.getProgramReport, s.authenticate, allow(auth.Auditor, auth.Operator))
	// A member token sees the board and its own standing.
	v1.GET("/leaderboard", s.getLeaderboard, s.authenticate, allowOwnCheckedByHandler(auth.Shop, auth.Member, auth.Auditor, auth.Operator))
	v1.POST("/campaigns", s.postCampaign, s.authenticate, allow(auth.Operator))
	v1.GET("/campaigns/:id", s.getCampaign, s.authenticate, allowOwnCheckedByHandler(auth.Shop, auth.Member, auth.Auditor, auth.Operator))
	v1.POST("/webhooks", s.postWebhook, s.authenticate, allow(auth.Operator))
	v1.GET("/webhooks", s.getWebhooks, s.authenticate, allow(auth.Operator, auth.Auditor))
	v1.GET("/webhooks/:id", s.getWebhook, s.authenticate, allow(auth.Operator, auth.Auditor))
	v1.DELETE("/webhooks/:id", s.deleteWebhook, s.authenticate, allow(auth.Operator))
	v1.GET("/webhooks/:id/deliveries", s.getWebhookDeliveries, s.authenticate, allow(auth.Operator, auth.Auditor))
	return e
}

type server struct {
	cfg     Config
	keys    *auth.KeyCache
	limiter *keyLimiter // nil: no limit
}

func requestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
}

// observe logs each request and records its metrics under the route pattern (never the raw path,
// which would make a metric per account code).
func (s *server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		status := c.Response().Status
		d := time.Since(start)
		metrics.HTTPRequest(route, c.Request().Method, status, d)
		if route != "/healthz" && route != "/metrics" {
			s.cfg.Logger.Info("http", "method", c.Request().Method, "path", c.Request().URL.Path, "route", route,
				"status", status, "duration_ms", float64(d.Microseconds())/1000, "request_id", requestID(c))
		}
		return nil
	}
}

func (s *server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	p := toProblem(err, s.cfg.Logger, requestID(c))
	b, _ := json.Marshal(p)
	if p.Status == http.StatusServiceUnavailable {
		c.Response().Header().Set(echo.HeaderRetryAfter, "1")
	}
	c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(p.Status)
	_, _ = c.Response().Write(b)
}

type principalKey struct{}

// cleanParams makes path parameters what the client meant and refuses what no id can hold. Echo
// matches on the escaped path when it differs from the decoded one (an id with "/", "+" or ":"
// sent as encodeURIComponent sends it) and then leaves the parameters escaped: they are unescaped
// here, once. A NUL character or invalid UTF-8 in a parameter or the query is a 400, never a
// database error.
func cleanParams(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		values := c.ParamValues()
		if c.Request().URL.RawPath != "" {
			clean := make([]string, len(values))
			for i, v := range values {
				u, err := url.PathUnescape(v)
				if err != nil {
					return validation("the path is not correctly escaped")
				}
				clean[i] = u
			}
			c.SetParamValues(clean...)
			values = clean
		}
		for _, v := range values {
			if !cleanText(v) {
				return validation("path segments must be UTF-8 text without NUL characters")
			}
		}
		for name, vs := range c.QueryParams() {
			for _, v := range vs {
				if !cleanText(name) || !cleanText(v) {
					return validation("query parameters must be UTF-8 text without NUL characters")
				}
			}
		}
		return next(c)
	}
}

func cleanText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// unauthorized is a 401 with the challenge RFC 9110 asks for.
func unauthorized(c echo.Context, detail string) error {
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="rebate"`)
	return &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Detail: detail}
}

// authenticate resolves the bearer key; a missing or unknown key is 401. The scheme's name is
// case-insensitive (RFC 9110 §11.1).
func (s *server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get(echo.HeaderAuthorization)
		scheme, key, ok := strings.Cut(strings.TrimSpace(h), " ")
		key = strings.TrimSpace(key)
		if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
			return unauthorized(c, "send Authorization: Bearer <key>")
		}
		p, err := s.keys.Lookup(c.Request().Context(), s.cfg.Pool, key)
		if err != nil {
			if err == auth.ErrUnknownKey {
				return unauthorized(c, err.Error())
			}
			return err
		}
		c.Set("principal", p)
		if err := s.limit(c, strconv.FormatInt(p.KeyID, 10)+"/"+p.MemberID); err != nil {
			return err
		}
		return next(c)
	}
}

// allow lets only the given roles through. A member token passes only for its own member: the
// route's :id must be that member.
func allow(roles ...auth.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, _ := c.Get("principal").(auth.Principal)
			for _, r := range roles {
				if p.Role == r && (r != auth.Member || c.Param("id") == p.MemberID) {
					return next(c)
				}
			}
			return &Error{Status: http.StatusForbidden, Code: "forbidden", Detail: "role " + string(p.Role) + " may not do this"}
		}
	}
}

// allowOwnCheckedByHandler lets the roles through, a member token whatever the path: for routes
// whose path names no member, whose handler checks that the thing belongs to the token's member.
func allowOwnCheckedByHandler(roles ...auth.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, _ := c.Get("principal").(auth.Principal)
			for _, r := range roles {
				if p.Role == r {
					return next(c)
				}
			}
			return &Error{Status: http.StatusForbidden, Code: "forbidden", Detail: "role " + string(p.Role) + " may not do this"}
		}
	}
}

func (s *server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) openapi(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", docs.OpenAPI)
}

// operatorOrConsole lets an operator through by bearer key, or by an operator's console session
// when the request carries no Authorization header (a browser on River's UI).
func (s *server) operatorOrConsole(next echo.HandlerFunc) echo.HandlerFunc {
	byKey := s.authenticate(allow(auth.Operator)(next))
	return func(c echo.Context) error {
		if c.Request().Header.Get(echo.HeaderAuthorization) != "" || s.cfg.ConsoleRole == nil {
			return byKey(c)
		}
		role, err := s.cfg.ConsoleRole(c.Request())
		if err != nil {
			return unauthorized(c, "log in to the console (/console/login) or send Authorization: Bearer <key>")
		}
		if role != auth.Operator {
			return &Error{Status: http.StatusForbidden, Code: "forbidden", Detail: "role " + string(role) + " may not do this"}
		}
		return next(c)
	}
}
