package wallet_test

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/program"
	"github.com/rebate-ledger/rebate/internal/wallet"
)

func TestFeeRoundsHalfUpAndRespectsTheMinimum(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		amount, rate, min, fee string
		cur                    money.Currency
	}{
		{"150.50", "0.01", "0.00", "1.51", money.CNY},  // 1.505: half up at the third decimal
		{"150.49", "0.01", "0.00", "1.50", money.CNY},  // 1.5049
		{"100.30", "0.015", "0.00", "1.50", money.CNY}, // 1.5045
		{"100.35", "0.015", "0.00", "1.51", money.CNY}, // 1.50525
		{"50.00", "0.01", "1.00", "1.00", money.CNY},   // 0.50 < fee_min: the minimum binds
		{"100.00", "0.01", "1.00", "1.00", money.CNY},  // exactly the minimum
		{"100.01", "0.01", "1.00", "1.00", money.CNY},  // 1.0001 rounds to the minimum
		{"150", "0.01", "0", "2", money.JPY},           // 1.5 yen rounds up
		{"149", "0.01", "0", "1", money.JPY},           // 1.49 yen rounds down
		{"10.00", "0", "0.00", "0.00", money.CNY},      // no fee
	} {
		r := program.WithdrawalRules{FeeRate: decimal.RequireFromString(tc.rate), FeeMin: money.MustParse(tc.min, tc.cur)}
		got := wallet.Fee(money.MustParse(tc.amount, tc.cur), r)
		require.Equal(t, tc.fee, got.String(), "%s × %s (min %s)", tc.amount, tc.rate, tc.min)
	}
}

func TestWindowsAreTheProgramsDaysAndMonths(t *testing.T) {
	t.Parallel()
	sh, err := time.LoadLocation("Asia/Shanghai")
	require.NoError(t, err)
	// 2026-12-31 16:30 UTC is 2027-01-01 00:30 in Shanghai: a new day and a new month there.
	day, month, until := wallet.Windows(time.Date(2026, 12, 31, 16, 30, 0, 0, time.UTC), sh)
	require.Equal(t, time.Date(2027, 1, 1, 0, 0, 0, 0, sh), day)
	require.Equal(t, time.Date(2027, 1, 1, 0, 0, 0, 0, sh), month)
	require.Equal(t, time.Date(2027, 1, 2, 0, 0, 0, 0, sh), until)
	day, month, until = wallet.Windows(time.Date(2026, 12, 31, 15, 59, 59, 0, time.UTC), sh)
	require.Equal(t, time.Date(2026, 12, 31, 0, 0, 0, 0, sh), day)
	require.Equal(t, time.Date(2026, 12, 1, 0, 0, 0, 0, sh), month)
	require.Equal(t, time.Date(2027, 1, 1, 0, 0, 0, 0, sh), until)
}
