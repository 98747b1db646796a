package store_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/pgtest"
)

// TestNumericScansIntoDecimal: numeric values read into decimal.Decimal, in binary (the extended
// protocol) and in text (the simple protocol), equal the value PostgreSQL prints, to the last digit,
// with nothing rounded; NULL and NaN are refused; decimal parameters round-trip.
func TestNumericScansIntoDecimal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t)
	for _, s := range []string{"0", "12.30", "-0.01", "99999999999999999999.99", "0.000000000000000001",
		"123456789012345678901234567890.123456789", "-7", "10000", "1e-30", "5.5e25"} {
		var binary, text decimal.Decimal
		var printed string
		require.NoError(t, pool.QueryRow(ctx, "SELECT $1::numeric, $1::numeric::text", s).Scan(&binary, &printed), s)
		conn, err := pool.Acquire(ctx)
		require.NoError(t, err)
		require.NoError(t, conn.QueryRow(ctx, "SELECT '"+s+"'::numeric", pgxSimple).Scan(&text), s)
		conn.Release()
		want := decimal.RequireFromString(printed)
		require.True(t, want.Equal(binary), "%s: binary scan %s, PostgreSQL prints %s", s, binary, printed)
		require.True(t, want.Equal(text), "%s: text scan %s, PostgreSQL prints %s", s, text, printed)
		require.Equal(t, want.String(), binary.String())

		var back string
		require.NoError(t, pool.QueryRow(ctx, "SELECT $1::numeric::text", binary).Scan(&back))
		require.True(t, decimal.RequireFromString(back).Equal(want), s)
	}
	var d decimal.Decimal
	require.ErrorContains(t, pool.QueryRow(ctx, "SELECT NULL::numeric").Scan(&d), "NULL")
	require.ErrorContains(t, pool.QueryRow(ctx, "SELECT 'NaN'::numeric").Scan(&d), "NaN")
}

// pgxSimple makes a query use the simple protocol, whose results come as text.
var pgxSimple = pgx.QueryExecModeSimpleProtocol
