package money_test

import (
	"testing"

	"github.com/rebate-ledger/rebate/internal/money"
)

// FuzzParse: Parse never panics; what it accepts prints back at the currency's scale, parses again
// to the same amount, and never has more decimals than the currency allows.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"12.30", "0", "-1.5", "1e3", "00.1", "1.", ".5", "99999999999999999999", "1.234", "１２", "-0.00", "+1", " 1", "0x10", "NaN"} {
		for _, c := range []string{"CNY", "JPY", "PTS", "XYZ"} {
			f.Add(s, c)
		}
	}
	f.Fuzz(func(t *testing.T, s, cur string) {
		a, err := money.Parse(s, money.Currency(cur))
		if err != nil {
			return
		}
		if !a.Currency().Valid() {
			t.Fatalf("%q %q: accepted an unknown currency", s, cur)
		}
		if -a.Decimal().Exponent() > a.Currency().Scale() && !a.Decimal().Equal(a.Decimal().Truncate(a.Currency().Scale())) {
			t.Fatalf("%q %q: more decimals than %s allows", s, cur, a.Currency())
		}
		b, err := money.Parse(a.String(), a.Currency())
		if err != nil || !b.Equal(a) {
			t.Fatalf("%q %q: printed as %q, which parses to %v (%v)", s, cur, a.String(), b, err)
		}
	})
}
