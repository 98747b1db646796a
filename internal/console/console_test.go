package console_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/auth"
	"github.com/rebate-ledger/rebate/internal/campaign"
	"github.com/rebate-ledger/rebate/internal/console"
	"github.com/rebate-ledger/rebate/internal/httpapi"
	"github.com/rebate-ledger/rebate/internal/jobs"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/notify"
	"github.com/rebate-ledger/rebate/internal/pgtest"
	"github.com/rebate-ledger/rebate/internal/rebate"
	"github.com/rebate-ledger/rebate/internal/wallet"
	"github.com/rebate-ledger/rebate/internal/wallet/csvbank"
)

type bundle struct {
	pool              *pgxpool.Pool
	srv               *httptest.Server
	wallet            *wallet.Wallet
	operator, auditor string
	shop              string
	ledger            *ledger.Ledger
	withdrawalID      string
	memberID, tmpDir  string
	ctx               context.Context
}

// setup serves the API and the console from one echo server (as rebate serve does), with River's
// workers, the CSV bank-file provider, and a member whose withdrawal waits for review.
func setup(t *testing.T) *bundle {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.New(t)
	l := ledger.New(pool)
	engine := rebate.NewEngine(pool, l)
	w := wallet.New(pool, l, csvbank.Provider{})
	logger := slog.New(slog.DiscardHandler)
	rc, err := jobs.NewClient(pool, l, engine, jobs.Config{Workers: true, Logger: logger, Wallet: w})
	require.NoError(t, err)
	require.NoError(t, rc.Start(ctx))
	t.Cleanup(func() { _ = rc.Stop(context.WithoutCancel(ctx)) })
	e := httpapi.New(httpapi.Config{Pool: pool, Ledger: l, Engine: engine, Wallet: w, Logger: logger})
	console.Register(e, console.Config{Pool: pool, Wallet: w, Logger: logger, Insecure: true, Engine: engine,
		Webhooks: notify.NewWebhooks(pool, nil, true), Campaigns: campaign.New(pool, l)})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	key := func(r auth.Role) string {
		k, err := auth.CreateKey(ctx, pool, r, "console-"+string(r))
		require.NoError(t, err)
		return k
	}
	b := &bundle{pool: pool, srv: srv, wallet: w, ledger: l, operator: key(auth.Operator), auditor: key(auth.Auditor), shop: key(auth.Shop),
		memberID: "alice", withdrawalID: "w-big", tmpDir: t.TempDir(), ctx: ctx}
	_, _, err = engine.Register(ctx, rebate.Registration{ID: b.memberID})
	require.NoError(t, err)
	a := money.MustParse("3000.00", money.CNY)
	_, err = l.PostTx(ctx, ledger.EntryRequest{Key: "fund", Kind: "release", OccurredAt: time.Now(), Postings: []ledger.PostingRequest{
		{Account: ledger.RebateExpense, Side: ledger.Debit, Amount: a},
		{Account: ledger.MemberAccount(b.memberID, "available"), Side: ledger.Credit, Amount: a}}})
	require.NoError(t, err)
	wd, _, err := w.Request(ctx, wallet.WithdrawalRequest{ID: b.withdrawalID, MemberID: b.memberID, Amount: "2500.00", Currency: "CNY",
		Destination: wallet.Destination{Type: "bank", Account: "6222020012345678", Name: "Alice"}})
	require.NoError(t, err)
	require.Equal(t, wallet.PendingReview, wd.Status)
	return b
}

// browser starts Debian's chromium, headless, through chromedp. It is installed by
// scripts/tools.sh (make test); a machine without it fails here rather than skipping.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	require.NoError(t, err, "chromium is not installed: scripts/tools.sh installs it (apt-get install chromium)")
	// As root (CI), chromium needs --no-sandbox; in a container /dev/shm may be tiny.
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("headless", true), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancel3)
	return ctx
}

// TestAnOperatorPaysAWithdrawalInTheBrowser drives a real browser through the console: log in,
// approve a withdrawal waiting for review, cut a batch, upload the bank's return file, and see the
// withdrawal paid.
func TestAnOperatorPaysAWithdrawalInTheBrowser(t *testing.T) {
	b := setup(t)
	ctx := browser(t)
	base := b.srv.URL

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/console/login"),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), b.operator),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("checker")),
	))
	checker, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("checker")))
	require.NoError(t, err)
	approve := chromedp.CSS("#w-" + b.withdrawalID + " .approve")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/console/withdrawals"),
		chromedp.WaitVisible(approve),
		chromedp.Click(approve),
		chromedp.WaitVisible(chromedp.ID("flash")),
	))
	flash, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("flash")))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/console"),
		chromedp.WaitVisible(chromedp.ID("cut")),
		chromedp.Click(chromedp.ID("cut")),
		chromedp.WaitVisible(chromedp.ID("batch-status")),
	))
	batchURL, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.NotEmpty(t, checker)
	require.Contains(t, flash, b.withdrawalID+" approved")
	wd, err := b.wallet.Get(b.ctx, b.withdrawalID)
	require.NoError(t, err)
	require.Equal(t, wallet.Approved, wd.Status)
	batchID := batchURL[strings.LastIndex(batchURL, "/")+1:]
	require.Equal(t, batchID, wd.BatchID, "the batch holds the approved withdrawal")

	// The bank pays the item: its return file names the item and the result.
	batch, err := b.wallet.Batch(b.ctx, batchID)
	require.NoError(t, err)
	require.Len(t, batch.Items, 1)
	file := filepath.Join(b.tmpDir, "return.csv")
	require.NoError(t, os.WriteFile(file, []byte(fmt.Sprintf("item_id,status,reference\n%d,paid,BANK-REF-1\n", batch.Items[0].ID)), 0o600))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetUploadFiles(chromedp.ID("return-file"), []string{file}),
		chromedp.Click(chromedp.ID("upload")),
		chromedp.WaitVisible(chromedp.ID("flash")),
	))
	status, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#item-"+b.withdrawalID+" .status")))
	require.NoError(t, err)
	require.Equal(t, "paid", strings.TrimSpace(status))
	wd, err = b.wallet.Get(b.ctx, b.withdrawalID)
	require.NoError(t, err)
	require.Equal(t, wallet.Paid, wd.Status)
	paid, err := b.ledger.Balance(b.ctx, ledger.MemberAccount(b.memberID, "withdrawing"), money.CNY)
	require.NoError(t, err)
	require.Equal(t, "0.00", paid.String(), "the money left through the payout")
}

// client is a cookie-keeping HTTP client that does not follow redirects.
func client(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// login fills the login form as a browser would: the page sets the form's CSRF cookie and field.
func login(t *testing.T, c *http.Client, base, key string) *http.Response {
	resp, err := c.Get(base + "/console/login")
	require.NoError(t, err)
	token := formCSRF(t, readAll(t, resp))
	resp, err = c.PostForm(base+"/console/login", url.Values{"key": {key}, "csrf": {token}})
	require.NoError(t, err)
	resp.Body.Close()
	return resp
}

func formCSRF(t *testing.T, page string) string {
	const marker = `name="csrf" value="`
	i := strings.Index(page, marker)
	require.GreaterOrEqual(t, i, 0, page)
	rest := page[i+len(marker):]
	return rest[:strings.Index(rest, `"`)]
}

// TestTheConsoleRefusesWhatItShould: no page without a session, no shop or unknown key, no form
// without the session's CSRF token, and an auditor reads but cannot act.
func TestTheConsoleRefusesWhatItShould(t *testing.T) {
	b := setup(t)
	base := b.srv.URL

	c := client(t)
	resp, err := c.Get(base + "/console/withdrawals")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/console/login", resp.Header.Get("Location"))
	for _, key := range []string{b.shop, "rk_nonsense", ""} {
		require.Equal(t, http.StatusUnauthorized, login(t, client(t), base, key).StatusCode, key)
	}
	// A login form posted from elsewhere (no token of the login page's cookie) is refused.
	resp, err = client(t).PostForm(base+"/console/login", url.Values{"key": {b.operator}, "csrf": {strings.Repeat("a", 64)}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	op := client(t)
	resp = login(t, op, base, b.operator)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	ck := resp.Cookies()[0]
	require.True(t, ck.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, ck.SameSite)
	for _, form := range []url.Values{{}, {"csrf": {"forged"}}} {
		resp, err = op.PostForm(base+"/console/withdrawals/"+b.withdrawalID+"/approve", form)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode, "a form without the session's CSRF token")
	}
	wd, err := b.wallet.Get(b.ctx, b.withdrawalID)
	require.NoError(t, err)
	require.Equal(t, wallet.PendingReview, wd.Status, "nothing changed")

	// River's UI takes the operator's console session.
	resp, err = op.Get(base + "/riverui/")
	require.NoError(t, err)
	resp.Body.Close()
	require.NotEqual(t, http.StatusUnauthorized, resp.StatusCode)

	aud := client(t)
	require.Equal(t, http.StatusSeeOther, login(t, aud, base, b.auditor).StatusCode)
	resp, err = aud.Get(base + "/console/withdrawals")
	require.NoError(t, err)
	page := new(strings.Builder)
	_, _ = fmt.Fprint(page, readAll(t, resp))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, page.String(), b.withdrawalID)
	require.NotContains(t, page.String(), "Approve", "an auditor reads the queue without its buttons")

	resp, err = op.PostForm(base+"/console/logout", url.Values{"csrf": {csrfOf(t, op, base)}})
	require.NoError(t, err)
	resp.Body.Close()
	resp, err = op.Get(base + "/console")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "logged out")
}

func readAll(t *testing.T, resp *http.Response) string {
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return sb.String()
}

// csrfOf reads the session's CSRF token from a page's form.
func csrfOf(t *testing.T, c *http.Client, base string) string {
	resp, err := c.Get(base + "/console")
	require.NoError(t, err)
	return formCSRF(t, readAll(t, resp))
}

// TestTheReadOnlyPages: an auditor reads the program's versions, the webhooks and their deliveries,
// the leaderboard and the program report.
func TestTheReadOnlyPages(t *testing.T) {
	b := setup(t)
	ep, _, err := notify.NewWebhooks(b.pool, nil, true).Register(b.ctx, notify.Registration{ID: "shop-hook", URL: "http://127.0.0.1:1/h",
		Events: []string{notify.WithdrawalApproved}})
	require.NoError(t, err)
	_, _, err = b.wallet.Act(b.ctx, b.withdrawalID, wallet.Approve, "ok", "")
	require.NoError(t, err)
	aud := client(t)
	require.Equal(t, http.StatusSeeOther, login(t, aud, b.srv.URL, b.auditor).StatusCode)
	for path, want := range map[string]string{
		"/console/program":                   `id="version-1"`,
		"/console/webhooks":                  ep.ID,
		"/console/webhooks/" + ep.ID:         notify.WithdrawalApproved,
		"/console/leaderboard?metric=earned": "Leaderboard: earned",
		"/console/report":                    "<th>members</th><td>1</td>",
		"/console":                           "Continuous checker",
		"/console/batches":                   "Payout batches, last 30 days",
	} {
		resp, err := aud.Get(b.srv.URL + path)
		require.NoError(t, err)
		page := readAll(t, resp)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.Contains(t, page, want, path)
		require.NotContains(t, page, "Cut a payout batch", "an auditor sees no operator forms")
	}
	for path, want := range map[string]int{
		"/console/report?from=yesterday":                                    http.StatusBadRequest,
		"/console/leaderboard?to=2026-13-01":                                http.StatusBadRequest,
		"/console/leaderboard?metric=richest":                               http.StatusBadRequest,
		"/console/report?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z": http.StatusBadRequest,
		"/console/webhooks/nope":                                            http.StatusNotFound,
		"/console/batches/nope":                                             http.StatusNotFound,
	} {
		resp, err := aud.Get(b.srv.URL + path)
		require.NoError(t, err)
		page := readAll(t, resp)
		require.Equal(t, want, resp.StatusCode, path)
		require.Contains(t, page, `id="error"`, path)
	}
}

// TestListsPageThroughEverything: a list longer than a page shows a next-page link, and following
// it shows the rest once; a cursor the console did not give is refused.
func TestListsPageThroughEverything(t *testing.T) {
	b := setup(t)
	ep, _, err := notify.NewWebhooks(b.pool, nil, true).Register(b.ctx, notify.Registration{ID: "busy-hook", URL: "http://127.0.0.1:1/h",
		Events: []string{notify.WithdrawalApproved}})
	require.NoError(t, err)
	tx, err := b.pool.Begin(b.ctx)
	require.NoError(t, err)
	for i := range 150 {
		require.NoError(t, notify.Write(b.ctx, tx, notify.Note{Type: notify.WithdrawalApproved, Data: map[string]int{"n": i}}))
	}
	require.NoError(t, tx.Commit(b.ctx))

	aud := client(t)
	require.Equal(t, http.StatusSeeOther, login(t, aud, b.srv.URL, b.auditor).StatusCode)
	next := regexp.MustCompile(`<a id="next" href="\?status=&amp;cursor=([A-Za-z0-9_-]+)">`)
	path, rows, pages := "/console/webhooks/"+ep.ID, 0, 0
	for path != "" {
		resp, err := aud.Get(b.srv.URL + path)
		require.NoError(t, err)
		body := readAll(t, resp)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		rows += strings.Count(body, "<td>"+notify.WithdrawalApproved+"</td>")
		pages++
		path = ""
		if m := next.FindStringSubmatch(body); m != nil {
			path = "/console/webhooks/" + ep.ID + "?status=&cursor=" + m[1]
		}
	}
	require.Equal(t, 150, rows, "every delivery once")
	require.Equal(t, 2, pages, "a page of 100, then the other 50")

	for _, path := range []string{"/console/webhooks/" + ep.ID + "?cursor=junk", "/console/withdrawals?cursor=junk", "/console/webhooks?cursor=junk"} {
		resp, err := aud.Get(b.srv.URL + path)
		require.NoError(t, err)
		body := readAll(t, resp)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, path)
		require.Contains(t, body, `id="error"`, path)
	}
}
