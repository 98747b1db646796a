package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
)

func (b *testBundle) invite(t *testing.T, id, referrer string) {
	t.Helper()
	body := `{"id":"` + id + `"}`
	if referrer != "" {
		body = `{"id":"` + id + `","referrer_id":"` + referrer + `"}`
	}
	status, m, _ := b.do(t, "POST", "/v1/members", b.shop, body)
	require.Equal(t, http.StatusCreated, status, m)
	b.clock.Advance(time.Minute) // sign-ups a minute apart: who reached a figure first is clear
}

func period(from, to time.Time) string {
	return "from=" + url.QueryEscape(from.Format(time.RFC3339)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339))
}

// TestLeaderboardsRankAndCampaignsPayOnce runs a campaign over sign-ups: the board ranks ties by
// who reached the figure first, a member sees its own rank, the award job pays each prize once as a
// journal entry to the winner's held, and what happens after the end changes nothing.
func TestLeaderboardsRankAndCampaignsPayOnce(t *testing.T) {
	t.Parallel()
	b := setupWith(t, setupOpts{workers: true})
	t0 := b.clock.Now()
	start, end := t0.Add(-time.Hour), t0.Add(time.Hour)

	status, c, _ := b.do(t, "POST", "/v1/campaigns", b.operator, fmt.Sprintf(`{"id":"december","metric":"invited",
		"starts_at":%q,"ends_at":%q,"prizes":[{"rank":1,"amount":"500.00"},{"rank":2,"amount":"100.00"},{"rank":3,"amount":"50.00"},{"rank":5,"amount":"1.00"}]}`,
		start.Format(time.RFC3339), end.Format(time.RFC3339)))
	require.Equal(t, http.StatusCreated, status, c)
	require.Equal(t, "scheduled", c["status"])
	require.Contains(t, c["terms"], "does not re-rank")
	status, again, hdr := b.do(t, "POST", "/v1/campaigns", b.operator, fmt.Sprintf(`{"id":"december","metric":"invited",
		"starts_at":%q,"ends_at":%q,"prizes":[{"rank":1,"amount":"500.00"},{"rank":2,"amount":"100.00"},{"rank":3,"amount":"50.00"},{"rank":5,"amount":"1.00"}]}`,
		start.Format(time.RFC3339), end.Format(time.RFC3339)))
	require.Equal(t, http.StatusCreated, status)
	require.Equal(t, "true", hdr.Get("Idempotent-Replayed"))
	require.Equal(t, c, again)

	// a and b invite two each (a first), c one; d's invitee came before the period.
	b.clock.Set(start.Add(-10 * time.Minute))
	b.invite(t, "d", "")
	b.invite(t, "d1", "d")
	b.clock.Set(t0)
	for _, m := range []struct{ id, ref string }{{"a", ""}, {"b", ""}, {"c", ""}, {"b1", "b"}, {"a1", "a"}, {"a2", "a"}, {"b2", "b"}, {"c1", "c"}} {
		b.invite(t, m.id, m.ref)
	}

	status, board, _ := b.get(t, "/v1/leaderboard?metric=invited&"+period(start, end), b.shop)
	require.Equal(t, http.StatusOK, status, board)
	ranked := func(board map[string]any) []string {
		var out []string
		for _, it := range board["items"].([]any) {
			m := it.(map[string]any)
			out = append(out, fmt.Sprintf("%v:%s=%s", m["rank"], m["member_id"], m["figure"]))
		}
		return out
	}
	require.Equal(t, []string{"1:a=2", "2:b=2", "3:c=1"}, ranked(board), "a reached 2 before b did")
	require.Nil(t, board["me"])

	status, tok, _ := b.do(t, "POST", "/v1/members/c/tokens", b.shop, `{}`)
	require.Equal(t, http.StatusCreated, status, tok)
	status, board, _ = b.get(t, "/v1/leaderboard?metric=invited&limit=1&"+period(start, end), tok["token"].(string))
	require.Equal(t, http.StatusOK, status, board)
	require.Equal(t, []string{"1:a=2"}, ranked(board))
	require.Equal(t, "c", board["me"].(map[string]any)["member_id"])
	require.EqualValues(t, 3, board["me"].(map[string]any)["rank"])

	// The period ends; the award job runs (it waits for the clock).
	kind := func(k string) int {
		var n int
		require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM entries WHERE kind = $1`, k).Scan(&n))
		return n
	}
	b.clock.Set(end.Add(time.Second))
	require.Eventually(t, func() bool {
		_, c, _ = b.get(t, "/v1/campaigns/december", b.auditor)
		return c["status"] == "awarded"
	}, 20*time.Second, 50*time.Millisecond)
	winners := c["winners"].([]any)
	require.Len(t, winners, 3, "rank 5 has nobody: not paid")
	for i, want := range []struct{ member, amount string }{{"a", "500.00"}, {"b", "100.00"}, {"c", "50.00"}} {
		w := winners[i].(map[string]any)
		require.Equal(t, want.member, w["member_id"])
		require.Equal(t, want.amount, w["amount"])
		require.Equal(t, want.amount, b.balance(t, want.member, "held"), "the prize is held, like a rebate")
	}
	require.Len(t, c["standings"], 3)
	require.Equal(t, 3, kind("campaign_prize"), "one entry per prize")
	b.requireSound(t)

	// After the end: c's new invitees would put it first, but the standings are final.
	b.invite(t, "c2", "c")
	b.invite(t, "c3", "c")
	require.NoError(t, b.campaigns.Award(context.Background(), "december"))
	_, c2, _ := b.get(t, "/v1/campaigns/december", b.auditor)
	require.Equal(t, c["winners"], c2["winners"])
	require.Equal(t, c["standings"], c2["standings"])
	require.Equal(t, 3, kind("campaign_prize"), "awarding again pays nothing")

	// The release job waits for the hold; released, the prizes become available once.
	releaseAt, err := time.Parse(time.RFC3339Nano, winners[0].(map[string]any)["release_at"].(string))
	require.NoError(t, err)
	var scheduled time.Time
	require.NoError(t, b.pool.QueryRow(context.Background(),
		`SELECT scheduled_at FROM river_job WHERE kind = 'campaign.release' AND args->>'campaign_id' = 'december'`).Scan(&scheduled))
	require.WithinDuration(t, releaseAt, scheduled, time.Millisecond)
	b.clock.Set(releaseAt)
	require.NoError(t, b.campaigns.ReleasePrizes(context.Background(), "december"))
	require.NoError(t, b.campaigns.ReleasePrizes(context.Background(), "december"))
	require.Equal(t, "0.00", b.balance(t, "a", "held"))
	require.Equal(t, "500.00", b.balance(t, "a", "available"))
	var released int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM entries WHERE idempotency_key LIKE 'prize_release:december:%'`).Scan(&released))
	require.Equal(t, 3, released, "each prize released once")
	rep, err := b.ledger.Verify(context.Background())
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.Problems)
}

// TestEarnedAndConvertedBoards: the earned board sums an order's cash rebates net of refunds; the
// converted board counts invitees at their first applied order (the one that counted toward the
// inviter's converted_invitees), also when an earlier-dated order arrives later.
func TestEarnedAndConvertedBoards(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.invite(t, "p", "")
	b.invite(t, "q", "")
	b.invite(t, "p1", "p")
	b.invite(t, "q1", "q")
	b.invite(t, "q2", "q")
	earned := map[string]decimal.Decimal{}
	send := func(id, order, member, at, amount string) {
		t.Helper()
		status, ev, _ := b.do(t, "POST", "/v1/events", b.shop, fmt.Sprintf(`{"id":%q,"type":"order.paid","occurred_at":%q,
			"data":{"order_id":%q,"member_id":%q,"amount":%q,"currency":"CNY"}}`, id, at, order, member, amount))
		require.Equal(t, http.StatusCreated, status, ev)
		if at < "2026-11-08" {
			return // before the period
		}
		for _, r := range ev["rebates"].([]any) {
			if r := r.(map[string]any); r["currency"] == "CNY" {
				earned[r["member_id"].(string)] = earned[r["member_id"].(string)].Add(decimal.RequireFromString(r["amount"].(string)))
			}
		}
	}
	send("e1", "o1", "p1", "2026-11-10T00:00:00Z", "100.00")
	send("e2", "o2", "q1", "2026-11-12T00:00:00Z", "60.00")
	send("e3", "o3", "q2", "2026-11-20T00:00:00Z", "60.00")
	send("e4", "o4", "q2", "2026-11-05T00:00:00Z", "20.00") // earlier-dated, but applied after q2's first
	status, ev, _ := b.do(t, "POST", "/v1/events", b.shop, `{"id":"r1","type":"order.refunded","occurred_at":"2026-11-21T00:00:00Z",
		"data":{"order_id":"o3","refund_id":"r1","amount":"60.00"}}`)
	require.Equal(t, http.StatusCreated, status, ev)
	earned["q"] = earned["q"].Sub(clawedCash(t, b, "o3", "q"))

	from, to := time.Date(2026, 11, 8, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	status, board, _ := b.get(t, "/v1/leaderboard?metric=earned&"+period(from, to), b.auditor)
	require.Equal(t, http.StatusOK, status, board)
	require.Equal(t, "CNY", board["currency"])
	items := board["items"].([]any)
	require.Len(t, items, 2)
	for _, it := range items {
		m := it.(map[string]any)
		require.Equal(t, earned[m["member_id"].(string)].StringFixed(2), m["figure"], m["member_id"])
	}
	require.True(t, earned["p"].GreaterThan(earned["q"]), "p's one order earned more than q's two, once o3 was refunded")
	require.Equal(t, "p", items[0].(map[string]any)["member_id"])

	status, board, _ = b.get(t, "/v1/leaderboard?metric=converted&"+period(from, to), b.auditor)
	require.Equal(t, http.StatusOK, status, board)
	items = board["items"].([]any)
	require.Len(t, items, 2)
	require.Equal(t, "q", items[0].(map[string]any)["member_id"], "q1 and q2 converted in the period")
	require.Equal(t, "2", items[0].(map[string]any)["figure"])
	require.Equal(t, "p", items[1].(map[string]any)["member_id"])
	require.Equal(t, "1", items[1].(map[string]any)["figure"])
}

// TestLeaderboardAndCampaignRoutesRefuseBadInput: each bad request is a clear 4xx and writes
// nothing.
func TestLeaderboardAndCampaignRoutesRefuseBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	now := b.clock.Now()
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	good := func(extra string) string {
		return `{"id":"c1","metric":"invited","starts_at":"` + at(-time.Hour) + `","ends_at":"` + at(time.Hour) + `","prizes":[{"rank":1,"amount":"5.00"}]` + extra + `}`
	}
	for _, tc := range []struct{ method, path, body, code string }{
		{"GET", "/v1/leaderboard?metric=richest", ``, "validation_failed"},
		{"GET", "/v1/leaderboard", ``, "validation_failed"},
		{"GET", "/v1/leaderboard?metric=invited&from=yesterday", ``, "validation_failed"},
		{"GET", "/v1/leaderboard?metric=invited&from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z", ``, "validation_failed"},
		{"GET", "/v1/leaderboard?metric=invited&from=2020-01-01T00:00:00Z&to=2026-11-01T00:00:00Z", ``, "validation_failed"},
		{"GET", "/v1/leaderboard?metric=invited&limit=501", ``, "validation_failed"},
		{"GET", "/v1/campaigns/nope", ``, "not_found"},
		{"POST", "/v1/campaigns", `{`, "validation_failed"},
		{"POST", "/v1/campaigns", good(`,"extra":1`), "validation_failed"},
		{"POST", "/v1/campaigns", `{"id":"c 1","metric":"invited","starts_at":"` + at(-time.Hour) + `","ends_at":"` + at(time.Hour) + `","prizes":[{"rank":1,"amount":"5.00"}]}`, "validation_failed"},
		{"POST", "/v1/campaigns", `{"id":"c1","metric":"richest","starts_at":"` + at(-time.Hour) + `","ends_at":"` + at(time.Hour) + `","prizes":[{"rank":1,"amount":"5.00"}]}`, "validation_failed"},
		{"POST", "/v1/campaigns", `{"id":"c1","metric":"invited","starts_at":"` + at(time.Hour) + `","ends_at":"` + at(-time.Hour) + `","prizes":[{"rank":1,"amount":"5.00"}]}`, "validation_failed"},
		{"POST", "/v1/campaigns", `{"id":"c1","metric":"invited","starts_at":"` + at(-3*time.Hour) + `","ends_at":"` + at(-time.Hour) + `","prizes":[{"rank":1,"amount":"5.00"}]}`, "validation_failed"},
		{"POST", "/v1/campaigns", `{"id":"c1","metric":"invited","starts_at":"` + at(-time.Hour) + `","ends_at":"` + at(time.Hour) + `","prizes":[]}`, "validation_failed"},
		{"POST", "/v1/campaigns", `{"id":"c1","metric":"invited","starts_at":"` + at(-time.Hour) + `","ends_at":"` + at(time.Hour) + `","prizes":[{"rank":0,"amount":"5.00"}]}`, "validation_failed"},
		{"POST", "/v1/campaigns", `{"id":"c1","metric":"invited","starts_at":"` + at(-time.Hour) + `","ends_at":"` + at(time.Hour) + `","prizes":[{"rank":1,"amount":"5.00"},{"rank":1,"amount":"1.00"}]}`, "validation_failed"},
		{"POST", "/v1/campaigns", `{"id":"c1","metric":"invited","starts_at":"` + at(-time.Hour) + `","ends_at":"` + at(time.Hour) + `","prizes":[{"rank":1,"amount":"5.001"}]}`, "validation_failed"},
		{"POST", "/v1/campaigns", `{"id":"c1","metric":"invited","starts_at":"` + at(-time.Hour) + `","ends_at":"` + at(time.Hour) + `","prizes":[{"rank":1,"amount":"-5.00"}]}`, "validation_failed"},
		{"POST", "/v1/campaigns", `{"id":"c1","metric":"invited","starts_at":"` + at(-time.Hour) + `","ends_at":"` + at(time.Hour) + `","prizes":[{"rank":1,"amount":5}]}`, "validation_failed"},
	} {
		_, p, _ := b.do(t, tc.method, tc.path, b.operator, tc.body)
		require.Equal(t, tc.code, p["code"], "%s %s %s", tc.method, tc.path, tc.body)
	}
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM campaigns`).Scan(&n))
	require.Zero(t, n)
	status, c, _ := b.do(t, "POST", "/v1/campaigns", b.operator, good(""))
	require.Equal(t, http.StatusCreated, status, c)
	_, p, _ := b.do(t, "POST", "/v1/campaigns", b.operator, `{"id":"c1","metric":"converted","starts_at":"`+at(-time.Hour)+`","ends_at":"`+at(time.Hour)+`","prizes":[{"rank":1,"amount":"5.00"}]}`)
	require.Equal(t, "idempotency_conflict", p["code"])
}

// clawedCash is what refunds took back of a member's cash legs of an order, as its waterfall says.
func clawedCash(t *testing.T, b *testBundle, order, member string) decimal.Decimal {
	t.Helper()
	status, o, _ := b.get(t, "/v1/orders/"+order, b.auditor)
	require.Equal(t, http.StatusOK, status, o)
	sum := decimal.Zero
	for _, l := range o["lots"].([]any) {
		if l := l.(map[string]any); l["member_id"] == member && l["leg"] != "points" {
			sum = sum.Add(decimal.RequireFromString(l["clawed_back"].(string)))
		}
	}
	require.True(t, sum.IsPositive(), "the refund clawed something back")
	return sum
}
