package money_test

import (
	"fmt"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/rebate-ledger/rebate/internal/money"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		cur  money.Currency
		want string
		err  error
	}{
		{"12.30", money.CNY, "12.30", nil},
		{"12.3", money.CNY, "12.30", nil},
		{"0", money.CNY, "0.00", nil},
		{"-5.01", money.USD, "-5.01", nil},
		{"100", money.JPY, "100", nil},
		{"100", money.PTS, "100", nil},
		{"12.301", money.CNY, "", money.ErrTooManyDecimals},
		{"1.000", money.CNY, "", money.ErrTooManyDecimals},
		{"1.5", money.JPY, "", money.ErrTooManyDecimals},
		{"1.0", money.PTS, "", money.ErrTooManyDecimals},
		{"1e3", money.CNY, "", money.ErrMalformed},
		{"+1", money.CNY, "", money.ErrMalformed},
		{" 1", money.CNY, "", money.ErrMalformed},
		{"01", money.CNY, "", money.ErrMalformed},
		{"1,000.00", money.CNY, "", money.ErrMalformed},
		{"NaN", money.CNY, "", money.ErrMalformed},
		{"", money.CNY, "", money.ErrMalformed},
		{".5", money.CNY, "", money.ErrMalformed},
		{"1", "XYZ", "", money.ErrUnknownCurrency},
	} {
		got, err := money.Parse(tc.in, tc.cur)
		if tc.err != nil {
			require.ErrorIs(t, err, tc.err, "%q", tc.in)
			continue
		}
		require.NoError(t, err, "%q", tc.in)
		require.Equal(t, tc.want, got.String())
	}
}

func TestRound(t *testing.T) {
	t.Parallel()
	x := money.MustParse("99.99", money.CNY)
	require.Equal(t, "4.99", x.MulRate(decimal.RequireFromString("0.05"), money.RoundDown).String())
	require.Equal(t, "5.00", x.MulRate(decimal.RequireFromString("0.05"), money.RoundHalfEven).String())
	require.Equal(t, "1.99", x.MulRate(decimal.RequireFromString("0.02"), money.RoundDown).String())
	require.Equal(t, "0.12", money.Round(decimal.RequireFromString("0.125"), money.CNY, money.RoundHalfEven).String())
	require.Equal(t, "0.14", money.Round(decimal.RequireFromString("0.135"), money.CNY, money.RoundHalfEven).String())
	require.Equal(t, "-0.13", money.Round(decimal.RequireFromString("-0.139"), money.CNY, money.RoundDown).String())
}

func TestSplitExample(t *testing.T) {
	t.Parallel()
	parts, err := money.Split(money.MustParse("100.00", money.CNY), []decimal.Decimal{decimal.NewFromInt(1), decimal.NewFromInt(1), decimal.NewFromInt(1)})
	require.NoError(t, err)
	require.Equal(t, []string{"33.34", "33.33", "33.33"}, []string{parts[0].String(), parts[1].String(), parts[2].String()})
}

var currencies = []money.Currency{money.CNY, money.USD, money.EUR, money.JPY, money.PTS}

func genAmount(t *rapid.T, cur money.Currency, label string) money.Amount {
	units := rapid.Int64Range(-1_000_000_000, 1_000_000_000).Draw(t, label)
	a, err := money.New(decimal.New(units, -cur.Scale()), cur)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Property: printing and parsing are inverse, and nothing outside the scale parses.
func TestParseRoundTripProperty(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		cur := rapid.SampledFrom(currencies).Draw(t, "cur")
		a := genAmount(t, cur, "a")
		back, err := money.Parse(a.String(), cur)
		if err != nil || !back.Equal(a) {
			t.Fatalf("round trip %s: %v %v", a, back, err)
		}
		extra := a.String()
		if cur.Scale() == 0 {
			extra += ".5"
		} else {
			extra += "1"
		}
		if _, err := money.Parse(extra, cur); err == nil {
			t.Fatalf("%q parsed in %s", extra, cur)
		}
	})
}

// Property: rounding lands on the scale; down never rounds away from zero, and moves less than a unit.
func TestRoundProperty(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		cur := rapid.SampledFrom(currencies).Draw(t, "cur")
		a := genAmount(t, cur, "a")
		rate := decimal.New(rapid.Int64Range(0, 1_000_000).Draw(t, "rate"), -6)
		exact := a.Decimal().Mul(rate)
		unit := decimal.New(1, -cur.Scale())
		for _, mode := range []money.RoundingMode{money.RoundDown, money.RoundHalfEven} {
			r := a.MulRate(rate, mode)
			if !r.Decimal().Equal(r.Decimal().Truncate(cur.Scale())) {
				t.Fatalf("%s off scale", r)
			}
			if r.Decimal().Sub(exact).Abs().GreaterThanOrEqual(unit) {
				t.Fatalf("%s moved a unit from %s", r, exact)
			}
			if mode == money.RoundDown && r.Decimal().Abs().GreaterThan(exact.Abs()) {
				t.Fatalf("down rounded %s away from zero to %s", exact, r)
			}
		}
	})
}

// Property: a split always sums to the whole, and each part is within a unit of its exact share.
func TestSplitProperty(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		cur := rapid.SampledFrom(currencies).Draw(t, "cur")
		a := genAmount(t, cur, "a")
		n := rapid.IntRange(1, 12).Draw(t, "n")
		weights := make([]decimal.Decimal, n)
		total := decimal.Zero
		for i := range weights {
			weights[i] = decimal.New(rapid.Int64Range(0, 10_000).Draw(t, fmt.Sprintf("w%d", i)), -2)
			total = total.Add(weights[i])
		}
		if total.IsZero() {
			weights[0] = decimal.NewFromInt(1)
			total = weights[0]
		}
		parts, err := money.Split(a, weights)
		if err != nil {
			t.Fatal(err)
		}
		sum := money.Zero(cur)
		unit := decimal.New(1, -cur.Scale())
		for i, p := range parts {
			sum, _ = sum.Add(p)
			share := a.Decimal().Mul(weights[i]).Div(total)
			if p.Decimal().Sub(share).Abs().GreaterThanOrEqual(unit) {
				t.Fatalf("part %d = %s, exact share %s", i, p, share)
			}
		}
		if !sum.Equal(a) {
			t.Fatalf("parts sum to %s, want %s", sum, a)
		}
	})
}

// FormatFixed must be StringFixed byte for byte: its output is stored, hashed and sealed.
func TestFormatFixedIsStringFixed(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		coef := rapid.OneOf(rapid.Int64Range(-1_000_000, 1_000_000), rapid.Int64()).Draw(t, "coef")
		exp := rapid.Int32Range(-9, 3).Draw(t, "exp")
		places := rapid.Int32Range(0, 8).Draw(t, "places")
		d := decimal.New(coef, exp)
		if got, want := money.FormatFixed(d, places), d.StringFixed(places); got != want {
			t.Fatalf("FormatFixed(%s, %d) = %q, StringFixed says %q", d, places, got, want)
		}
	})
	big, _ := decimal.NewFromString("123456789012345678901234567890.12")
	for _, d := range []decimal.Decimal{decimal.Zero, decimal.New(-5, -2), decimal.New(5, -3), big, big.Neg(), decimal.New(1, 20)} {
		for places := int32(0); places <= 3; places++ {
			if got, want := money.FormatFixed(d, places), d.StringFixed(places); got != want {
				t.Errorf("FormatFixed(%s, %d) = %q, StringFixed says %q", d, places, got, want)
			}
		}
	}
}
