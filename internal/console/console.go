// Package console is the operator console: a small server-rendered site at /console (Go
// html/template, no JavaScript) for the people who run the program. An operator or auditor logs in
// with an API key; the browser then holds a random session token in an HttpOnly, SameSite=Strict
// cookie (Secure unless the console is served over plain http on this machine), and every form
// carries the session's CSRF token. Operators review withdrawals, cut payout batches, download the
// bank file and upload its return file; auditors see the same pages read-only. River's own UI at
// /riverui takes the same session.
package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/audit"
	"github.com/rebate-ledger/rebate/internal/auth"
	"github.com/rebate-ledger/rebate/internal/campaign"
	"github.com/rebate-ledger/rebate/internal/clock"
	"github.com/rebate-ledger/rebate/internal/httpapi"
	"github.com/rebate-ledger/rebate/internal/notify"
	"github.com/rebate-ledger/rebate/internal/rebate"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
	"github.com/rebate-ledger/rebate/internal/wallet"
	"github.com/rebate-ledger/rebate/internal/wallet/csvbank"
)

//go:embed templates/*.html
var files embed.FS

var pages = template.Must(template.ParseFS(files, "templates/*.html"))

// CookieName is the session cookie.
const CookieName = "rebate_console"

// SessionTTL is how long a login lasts.
const SessionTTL = 8 * time.Hour

// Config wires the console.
type Config struct {
	Pool   *pgxpool.Pool
	Wallet *wallet.Wallet
	Clock  clock.Clock
	Logger *slog.Logger
	// Insecure drops the cookie's Secure flag: only for plain http on this machine (make run, tests).
	Insecure bool
	// MaxBatch is the most items a batch cut here holds (0: the wallet's default).
	MaxBatch int
	// Engine, Webhooks and Campaigns answer the read-only pages (program report, webhooks,
	// leaderboard).
	Engine    *rebate.Engine
	Webhooks  *notify.Webhooks
	Campaigns *campaign.Service
}

// Console serves the pages.
type Console struct{ cfg Config }

// Session is a logged-in operator or auditor.
type Session struct {
	KeyID int64
	Name  string
	Role  auth.Role
	CSRF  string
}

// Register mounts the console on e.
func Register(e *echo.Echo, cfg Config) *Console {
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Console{cfg: cfg}
	e.GET("/console/login", c.loginPage)
	e.POST("/console/login", c.login, loginCSRF)
	g := e.Group("/console", c.session)
	g.GET("", c.home)
	g.POST("/logout", c.logout, csrf)
	g.GET("/withdrawals", c.withdrawals)
	g.POST("/withdrawals/:id/:action", c.review, csrf, operator)
	g.GET("/batches", c.batches)
	g.GET("/batches/:id", c.batch)
	g.POST("/batches", c.cut, csrf, operator)
	g.GET("/batches/:id/file", c.bankFile, operator)
	g.POST("/batches/:id/results", c.results, csrf, operator)
	g.GET("/program", c.program)
	g.GET("/webhooks", c.webhooks)
	g.GET("/webhooks/:id", c.deliveries)
	g.GET("/leaderboard", c.leaderboard)
	g.GET("/report", c.report)
	return c
}

func hashToken(t string) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}

func random() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// SessionOf answers the session a request's cookie names, or an error: the console's own pages and
// River's UI (internal/httpapi) both use it.
func SessionOf(ctx context.Context, pool *pgxpool.Pool, r *http.Request, now time.Time) (Session, error) {
	ck, err := r.Cookie(CookieName)
	if err != nil || len(ck.Value) != 64 {
		return Session{}, errNoSession
	}
	row, err := store.New(pool).ConsoleSessionGet(ctx, sqlc.ConsoleSessionGetParams{TokenHash: hashToken(ck.Value), Now: now})
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, errNoSession
	}
	if err != nil {
		return Session{}, err
	}
	return Session{KeyID: row.KeyID, Name: row.Name, Role: auth.Role(row.Role), CSRF: row.Csrf}, nil
}

var errNoSession = errors.New("no console session")

func (c *Console) session(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		s, err := SessionOf(ec.Request().Context(), c.cfg.Pool, ec.Request(), c.cfg.Clock.Now())
		if errors.Is(err, errNoSession) {
			return ec.Redirect(http.StatusSeeOther, "/console/login")
		}
		if err != nil {
			return err
		}
		ec.Set("session", s)
		return next(ec)
	}
}

func sessionOf(ec echo.Context) Session { s, _ := ec.Get("session").(Session); return s }

// csrf refuses a form whose token is not the session's.
func csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		want := sessionOf(ec).CSRF
		got := ec.FormValue("csrf")
		if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			return echo.NewHTTPError(http.StatusForbidden, "the form's CSRF token does not match this session: reload the page")
		}
		return next(ec)
	}
}

func operator(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		if sessionOf(ec).Role != auth.Operator {
			return echo.NewHTTPError(http.StatusForbidden, "only an operator may do this")
		}
		return next(ec)
	}
}

func (c *Console) render(ec echo.Context, status int, name string, data map[string]any) error {
	if data == nil {
		data = map[string]any{}
	}
	data["Session"] = sessionOf(ec)
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		return err
	}
	h := ec.Response().Header()
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	return ec.HTMLBlob(status, buf.Bytes())
}

// loginCookie carries the login form's CSRF token (double submit: the form must post back what the
// cookie holds, which another site can neither read nor set).
const loginCookie = "rebate_console_login"

func (c *Console) loginPage(ec echo.Context) error {
	token := random()
	ec.SetCookie(&http.Cookie{Name: loginCookie, Value: token, Path: "/console/login", HttpOnly: true, Secure: !c.cfg.Insecure,
		SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	return c.render(ec, http.StatusOK, "login.html", map[string]any{"LoginCSRF": token})
}

func loginCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		ck, err := ec.Cookie(loginCookie)
		if err != nil || len(ck.Value) != 64 || subtle.ConstantTimeCompare([]byte(ec.FormValue("csrf")), []byte(ck.Value)) != 1 {
			return echo.NewHTTPError(http.StatusForbidden, "the login form's CSRF token does not match: reload the login page")
		}
		return next(ec)
	}
}

// login checks the key and starts a session. Only operator and auditor keys open the console.
func (c *Console) login(ec echo.Context) error {
	ctx := ec.Request().Context()
	key := strings.TrimSpace(ec.FormValue("key"))
	p, err := auth.Lookup(ctx, c.cfg.Pool, key)
	if err != nil || (p.Role != auth.Operator && p.Role != auth.Auditor) {
		return c.render(ec, http.StatusUnauthorized, "login.html", map[string]any{"Error": "That is not an operator or auditor key.",
			"LoginCSRF": ec.FormValue("csrf")})
	}
	token, now := random(), c.cfg.Clock.Now()
	if err := store.New(c.cfg.Pool).ConsoleSessionInsert(ctx, sqlc.ConsoleSessionInsertParams{TokenHash: hashToken(token), KeyID: p.KeyID,
		Role: string(p.Role), Csrf: random(), CreatedAt: now, ExpiresAt: now.Add(SessionTTL)}); err != nil {
		return err
	}
	ec.SetCookie(&http.Cookie{Name: CookieName, Value: token, Path: "/", HttpOnly: true, Secure: !c.cfg.Insecure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(SessionTTL.Seconds())})
	return ec.Redirect(http.StatusSeeOther, "/console")
}

func (c *Console) logout(ec echo.Context) error {
	if ck, err := ec.Cookie(CookieName); err == nil {
		if err := store.New(c.cfg.Pool).ConsoleSessionEnd(ec.Request().Context(), sqlc.ConsoleSessionEndParams{
			TokenHash: hashToken(ck.Value), Now: c.cfg.Clock.Now()}); err != nil {
			return err
		}
	}
	ec.SetCookie(&http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, Secure: !c.cfg.Insecure,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	return ec.Redirect(http.StatusSeeOther, "/console/login")
}

func (c *Console) home(ec echo.Context) error {
	checks, _, err := audit.Checks(ec.Request().Context(), c.cfg.Pool, "", 1)
	if err != nil {
		return err
	}
	data := map[string]any{}
	if len(checks) > 0 {
		data["Check"] = checks[0]
	}
	return c.render(ec, http.StatusOK, "home.html", data)
}

func (c *Console) withdrawals(ec echo.Context) error {
	status := ec.QueryParam("status")
	if status == "" {
		status = wallet.PendingReview
	}
	ws, next, err := c.cfg.Wallet.List(ec.Request().Context(), wallet.ListFilter{Status: status, Cursor: ec.QueryParam("cursor")})
	if err != nil {
		return c.failed(ec, err)
	}
	return c.render(ec, http.StatusOK, "withdrawals.html", map[string]any{"Status": status, "Withdrawals": ws,
		"Flash": ec.QueryParam("flash"), "Next": next})
}

func (c *Console) review(ec echo.Context) error {
	action := wallet.Action(ec.Param("action"))
	if action != wallet.Approve && action != wallet.Reject {
		return echo.NewHTTPError(http.StatusNotFound)
	}
	_, _, err := c.cfg.Wallet.Act(ec.Request().Context(), ec.Param("id"), action, strings.TrimSpace(ec.FormValue("reason")), "")
	if err != nil {
		return c.failed(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, "/console/withdrawals?flash="+ec.Param("id")+"+"+string(action)+"d")
}

// failed shows a refusal (a business error) on a page of its own; anything else is the server's.
func (c *Console) failed(ec echo.Context, err error) error {
	if e := apperr.As(err); e != nil {
		return c.render(ec, httpapi.StatusOf(e.Code), "error.html", map[string]any{"Code": e.Code, "Detail": e.Detail})
	}
	return err
}

func (c *Console) cut(ec echo.Context) error {
	b, _, err := c.cfg.Wallet.Cut(ec.Request().Context(), wallet.CutRequest{Currency: ec.FormValue("currency"), Max: c.cfg.MaxBatch})
	if err != nil {
		return c.failed(ec, err)
	}
	if b == nil {
		return c.render(ec, http.StatusOK, "error.html", map[string]any{"Code": "nothing_to_cut", "Detail": "No approved withdrawal of that currency waits for a batch."})
	}
	return ec.Redirect(http.StatusSeeOther, "/console/batches/"+b.ID)
}

// batches lists the last 30 days' payout batches with their totals (the payout report's rows).
func (c *Console) batches(ec echo.Context) error {
	now := c.cfg.Clock.Now()
	rep, err := c.cfg.Wallet.Report(ec.Request().Context(), now.Add(-30*24*time.Hour), now.Add(time.Minute))
	if err != nil {
		return err
	}
	return c.render(ec, http.StatusOK, "batches.html", map[string]any{"Batches": rep.Batches})
}

func (c *Console) batch(ec echo.Context) error {
	b, err := c.cfg.Wallet.Batch(ec.Request().Context(), ec.Param("id"))
	if err != nil {
		return c.failed(ec, err)
	}
	return c.render(ec, http.StatusOK, "batch.html", map[string]any{"Batch": b, "Flash": ec.QueryParam("flash")})
}

func (c *Console) bankFile(ec echo.Context) error {
	b, err := c.cfg.Wallet.Batch(ec.Request().Context(), ec.Param("id"))
	if err != nil {
		return c.failed(ec, err)
	}
	var buf bytes.Buffer
	if err := csvbank.Write(&buf, b); err != nil {
		return err
	}
	ec.Response().Header().Set("Content-Disposition", `attachment; filename="`+b.ID+`.csv"`)
	return ec.Blob(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
}

// results applies the bank's return file, uploaded as a form file.
func (c *Console) results(ec echo.Context) error {
	fh, err := ec.FormFile("file")
	if err != nil {
		return c.failed(ec, apperr.New(apperr.Validation, "choose the bank's return file"))
	}
	f, err := fh.Open()
	if err != nil {
		return err
	}
	defer f.Close()
	rs, err := csvbank.ReadResults(io.LimitReader(f, 8<<20))
	if err != nil {
		return c.failed(ec, err)
	}
	out, err := c.cfg.Wallet.ApplyResults(ec.Request().Context(), ec.Param("id"), rs)
	if err != nil {
		return c.failed(ec, err)
	}
	refused := 0
	for _, o := range out {
		if o.Err != nil {
			refused++
		}
	}
	flash := "results applied"
	if refused > 0 {
		flash = "results applied; some lines were refused"
	}
	return ec.Redirect(http.StatusSeeOther, "/console/batches/"+ec.Param("id")+"?flash="+strings.ReplaceAll(flash, " ", "+"))
}
