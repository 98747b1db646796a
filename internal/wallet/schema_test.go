package wallet_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/pgtest"
	"github.com/rebate-ledger/rebate/internal/rebate"
)

// TestWalletTablesRefuseWhatTheCodeNeverWrites writes straight to the tables: the database itself
// refuses a withdrawal naming no program or entry, a fee not below the amount, more decimals than the
// currency has, a settled withdrawal without its entry, and deleting wallet rows.
func TestWalletTablesRefuseWhatTheCodeNeverWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t)
	l := ledger.New(pool)
	_, _, err := rebate.NewEngine(pool, l).Register(ctx, rebate.Registration{ID: "m"})
	require.NoError(t, err)
	a := money.MustParse("10.00", money.CNY)
	e, err := l.PostTx(ctx, ledger.EntryRequest{Key: "k", Kind: "release", OccurredAt: time.Now(), Postings: []ledger.PostingRequest{
		{Account: ledger.RebateExpense, Side: ledger.Debit, Amount: a},
		{Account: ledger.MemberAccount("m", "available"), Side: ledger.Credit, Amount: a}}})
	require.NoError(t, err)
	entry := e.ID
	insert := `INSERT INTO withdrawals (id, member_id, currency, amount, fee, destination, status, program_version, requested_at, request_entry_id)
		VALUES ($1, 'm', 'CNY', $2, $3, '{"type":"bank"}', $4, $5, now(), $6)`
	for name, tc := range map[string]struct {
		args       []any
		constraint string
	}{
		"NoSuchProgram":  {[]any{"w1", "10.00", "1.00", "approved", 999, entry}, "withdrawals_references"},
		"NoSuchEntry":    {[]any{"w2", "10.00", "1.00", "approved", 1, int64(1 << 40)}, "withdrawals_references"},
		"FeeNotBelow":    {[]any{"w3", "10.00", "10.00", "approved", 1, entry}, "withdrawals_fee_below_amount"},
		"TooManyDigits":  {[]any{"w4", "10.001", "1.00", "approved", 1, entry}, "withdrawals_amount_exact"},
		"PaidOutOfBatch": {[]any{"w5", "10.00", "1.00", "paid", 1, entry}, "withdrawals_paid_from_a_batch"},
		"SettledNoEntry": {[]any{"w7", "10.00", "1.00", "cancelled", 1, entry}, "withdrawals_settled_by_an_entry"},
		"UnknownStatus":  {[]any{"w6", "10.00", "1.00", "lost", 1, entry}, "withdrawals_status_check"},
	} {
		_, err := pool.Exec(ctx, insert, tc.args...)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, name)
		require.Equal(t, tc.constraint, pgErr.ConstraintName, name)
	}
	_, err = pool.Exec(ctx, insert, "ok", "10.00", "1.00", "approved", 1, entry)
	require.NoError(t, err)

	// The scale the checks allow is the money package's, in every currency a withdrawal may be in.
	inCurrency := `INSERT INTO withdrawals (id, member_id, currency, amount, fee, destination, status, program_version, requested_at, request_entry_id)
		VALUES ($1, 'm', $2, $3, $4, '{"type":"bank"}', 'approved', 1, now(), $5)`
	for _, cur := range []money.Currency{money.CNY, money.USD, money.EUR, money.JPY} {
		unit := decimal.New(1, -int32(cur.Scale()))
		finer := decimal.New(1, -int32(cur.Scale())-1)
		amount, fee := decimal.NewFromInt(10).Add(unit), decimal.NewFromInt(1).Add(unit)
		_, err := pool.Exec(ctx, inCurrency, "exact-"+string(cur), string(cur), amount, fee, entry)
		require.NoError(t, err, cur)
		for name, tc := range map[string]struct {
			amount, fee decimal.Decimal
			constraint  string
		}{
			"amount": {amount.Add(finer), fee, "withdrawals_amount_exact"},
			"fee":    {amount, fee.Add(finer), "withdrawals_fee_below_amount"},
		} {
			_, err := pool.Exec(ctx, inCurrency, "finer-"+name+"-"+string(cur), string(cur), tc.amount, tc.fee, entry)
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr, "%s %s", cur, name)
			require.Equal(t, tc.constraint, pgErr.ConstraintName, "%s %s", cur, name)
		}
	}
	for _, sql := range []string{`DELETE FROM withdrawals`, `TRUNCATE withdrawals CASCADE`, `DELETE FROM payout_items`, `DELETE FROM payout_batches`} {
		_, err := pool.Exec(ctx, sql)
		require.ErrorContains(t, err, "never deleted", sql)
	}
}
