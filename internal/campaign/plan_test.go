package campaign_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/pgtest"
	"github.com/rebate-ledger/rebate/internal/rebate"
)

// TestBoardsAreAnsweredFromIndexes loads 200,000 members, orders and lots spread over a year and
// asks the planner how it answers each board over a week: by a range scan of the metric's index,
// never by reading a whole table. (The plans are what PostgreSQL chooses with fresh statistics;
// the queries are the ones the service runs, from internal/store/sqlc.)
func TestBoardsAreAnsweredFromIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t)
	const n = 200_000
	year := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(1, 2))
	at := func() time.Time { return year.Add(time.Duration(r.Int64N(int64(365 * 24 * time.Hour)))) }
	members := make([][]any, 0, n)
	for i := range n {
		var ref any
		upline := []string{}
		if i >= 1000 {
			p := fmt.Sprintf("m%d", r.IntN(1000))
			ref, upline = p, []string{p}
		}
		members = append(members, []any{fmt.Sprintf("m%d", i), rebate.ReferralCodeFor(i), ref, upline, []byte{0}, at()})
	}
	_, err := pool.CopyFrom(ctx, pgx.Identifier{"members"}, []string{"id", "referral_code", "referrer_id", "upline", "request_hash", "created_at"},
		pgx.CopyFromRows(members))
	require.NoError(t, err)
	// Orders need events and a program (their references); both bulk-loaded as the engine would write them.
	_, err = pool.Exec(ctx, `INSERT INTO events (id, type, request_hash, response)
		SELECT 'e' || g, 'order.paid', '\x00', '{}' FROM generate_series(1, $1) g`, n)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO orders (order_id, event_id, member_id, amount, currency, occurred_at, program_version, upline, release_at, first_order)
		SELECT 'o' || g, 'e' || g, 'm' || (1000 + g % 199000), 10, 'CNY',
		       $2::timestamptz + (g % 365) * interval '1 day' + (g % 86400) * interval '1 second', 1,
		       ARRAY['m' || (g % 1000)], $2::timestamptz, g % 3 = 0
		FROM generate_series(1, $1) g`, n, year)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO rebate_lots (order_id, beneficiary_id, leg, currency, amount, program_version, upline)
		SELECT 'o' || g, 'm' || (g % 1000), 'level1', 'CNY', 0.50, 1, '{}' FROM generate_series(1, $1) g`, n)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `ANALYZE members; ANALYZE orders; ANALYZE rebate_lots`)
	require.NoError(t, err)

	from, to := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 8, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ name, query, index string }{
		{"Invited", "LeaderboardInvited", "members_invited_idx"},
		{"Converted", "LeaderboardConverted", "orders_occurred_idx"},
		{"Earned", "LeaderboardEarned", "orders_occurred_idx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := pgx.NamedArgs{"from_at": from, "to_at": to, "max_rows": int64(10), "me": "", "currency": "CNY"}
			var plan strings.Builder
			rows, err := pool.Query(ctx, "EXPLAIN "+boardSQL(t, tc.query), args)
			require.NoError(t, err)
			for rows.Next() {
				var line string
				require.NoError(t, rows.Scan(&line))
				plan.WriteString(line + "\n")
			}
			require.NoError(t, rows.Err())
			p := plan.String()
			require.Contains(t, p, tc.index, p)
			require.NotContains(t, p, "Seq Scan on members", p)
			require.NotContains(t, p, "Seq Scan on orders", p)
		})
	}
}

// boardSQL is a query of queries/leaderboard.sql as sqlc generated it from (its @names are bound
// by pgx's named arguments).
func boardSQL(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../queries/leaderboard.sql")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(b), "-- name: "+name+" ")
	require.True(t, ok, name)
	_, rest, _ = strings.Cut(rest, "\n")
	q, _, _ := strings.Cut(rest, "-- name: ")
	return q
}
