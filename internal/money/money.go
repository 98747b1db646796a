// Package money is the only place amounts are made: a decimal with a currency, parsed from strings,
// held to the currency's scale, rounded by a declared mode, and split without losing a unit.
package money

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"
)

// Currency is an ISO 4217 code, or PTS for loyalty points.
type Currency string

// The currencies the ledger knows, with their scales (digits after the decimal point).
const (
	CNY Currency = "CNY"
	USD Currency = "USD"
	EUR Currency = "EUR"
	JPY Currency = "JPY"
	PTS Currency = "PTS"
)

var scales = map[Currency]int32{CNY: 2, USD: 2, EUR: 2, JPY: 0, PTS: 0}

// Errors returned by parsing; callers map them to validation errors.
var (
	ErrUnknownCurrency  = errors.New("unknown currency")
	ErrMalformed        = errors.New("malformed amount")
	ErrTooManyDecimals  = errors.New("more decimals than the currency allows")
	ErrCurrencyMismatch = errors.New("currencies differ")
)

// ParseCurrency accepts a known currency code exactly as written (upper case).
func ParseCurrency(s string) (Currency, error) {
	c := Currency(s)
	if _, ok := scales[c]; !ok {
		return "", fmt.Errorf("%w %q", ErrUnknownCurrency, s)
	}
	return c, nil
}

// Scale is the number of decimals the currency allows.
func (c Currency) Scale() int32 { return scales[c] }

// Valid reports whether the currency is known.
func (c Currency) Valid() bool { _, ok := scales[c]; return ok }

// Currencies lists the known currencies in code order.
func Currencies() []Currency {
	return slices.Sorted(maps.Keys(scales))
}

// Amount is a decimal value in one currency. The zero Amount has no currency and is not valid.
type Amount struct {
	value    decimal.Decimal
	currency Currency
}

// amountPattern is the only accepted text form: an optional minus, digits, optional fraction.
// No exponents, no plus sign, no spaces, no thousands separators.
var amountPattern = regexp.MustCompile(`^-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,18})?$`)

// Parse reads an amount such as "12.30" in currency c. More decimals than c's scale is an error:
// amounts are never rounded silently. Trailing zeros beyond the scale ("1.000" in CNY) are refused
// too, because they claim a precision the currency does not have.
func Parse(s string, c Currency) (Amount, error) {
	if !c.Valid() {
		return Amount{}, fmt.Errorf("%w %q", ErrUnknownCurrency, string(c))
	}
	if !amountPattern.MatchString(s) {
		return Amount{}, fmt.Errorf("%w %q: want digits with an optional fraction, like \"12.30\"", ErrMalformed, s)
	}
	if i := strings.IndexByte(s, '.'); i >= 0 && int32(len(s)-i-1) > c.Scale() {
		return Amount{}, fmt.Errorf("%w: %q has %d, %s allows %d", ErrTooManyDecimals, s, len(s)-i-1, c, c.Scale())
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return Amount{}, fmt.Errorf("%w %q", ErrMalformed, s)
	}
	return Amount{value: d, currency: c}, nil
}

// MustParse is Parse for constants in code and tests; it panics on error.
func MustParse(s string, c Currency) Amount {
	a, err := Parse(s, c)
	if err != nil {
		panic(err)
	}
	return a
}

// New makes an amount from a decimal that must already fit the currency's scale.
func New(d decimal.Decimal, c Currency) (Amount, error) {
	if !c.Valid() {
		return Amount{}, fmt.Errorf("%w %q", ErrUnknownCurrency, string(c))
	}
	if !d.Equal(d.Truncate(c.Scale())) {
		return Amount{}, fmt.Errorf("%w: %s in %s", ErrTooManyDecimals, d.String(), c)
	}
	return Amount{value: d, currency: c}, nil
}

// Zero is the zero amount of a currency.
func Zero(c Currency) Amount { return Amount{value: decimal.Zero, currency: c} }

// Decimal is the amount's value.
func (a Amount) Decimal() decimal.Decimal { return a.value }

// Currency is the amount's currency.
func (a Amount) Currency() Currency { return a.currency }

// String is the canonical text: exactly the currency's scale, like "12.30" or "100".
func (a Amount) String() string { return FormatFixed(a.value, a.currency.Scale()) }

// FormatFixed is d.StringFixed(places), byte for byte, without its big-number arithmetic for the
// values money holds (under 10^17 units of places decimals, and no more decimals than places):
// every posting's amount is formatted several times on its way to the database, the request hash
// and the seal. Other values take StringFixed itself.
func FormatFixed(d decimal.Decimal, places int32) string {
	exp := d.Exponent()
	if places < 0 || places > 6 || exp > 0 || exp < -places {
		return d.StringFixed(places)
	}
	coef := d.Coefficient()
	if !coef.IsInt64() {
		return d.StringFixed(places)
	}
	c := coef.Int64()
	shift := int64(1) // scales the coefficient to exactly places decimals
	for range places + exp {
		shift *= 10
	}
	if c >= 1e17/shift || c <= -1e17/shift {
		return d.StringFixed(places)
	}
	c *= shift
	neg := c < 0
	if neg {
		c = -c
	}
	var digitBuf, outBuf [24]byte
	digits := strconv.AppendInt(digitBuf[:0], c, 10)
	for int32(len(digits)) <= places { // at least one digit before the point
		digits = append([]byte{'0'}, digits...)
	}
	b := outBuf[:0]
	if neg {
		b = append(b, '-')
	}
	if places == 0 {
		return string(append(b, digits...))
	}
	cut := len(digits) - int(places)
	b = append(b, digits[:cut]...)
	b = append(b, '.')
	return string(append(b, digits[cut:]...))
}

// IsPositive, IsNegative and IsZero compare with zero.
func (a Amount) IsPositive() bool { return a.value.IsPositive() }
func (a Amount) IsNegative() bool { return a.value.IsNegative() }
func (a Amount) IsZero() bool     { return a.value.IsZero() }

// Neg is the amount with the opposite sign.
func (a Amount) Neg() Amount { return Amount{value: a.value.Neg(), currency: a.currency} }

// Add adds b; both must be in the same currency.
func (a Amount) Add(b Amount) (Amount, error) {
	if a.currency != b.currency {
		return Amount{}, fmt.Errorf("%w: %s + %s", ErrCurrencyMismatch, a.currency, b.currency)
	}
	return Amount{value: a.value.Add(b.value), currency: a.currency}, nil
}

// Sub subtracts b; both must be in the same currency.
func (a Amount) Sub(b Amount) (Amount, error) { return a.Add(b.Neg()) }

// Cmp compares two amounts of the same currency (-1, 0, 1); it panics on different currencies,
// which is always a programming error.
func (a Amount) Cmp(b Amount) int {
	if a.currency != b.currency {
		panic(fmt.Sprintf("money: compare %s with %s", a.currency, b.currency))
	}
	return a.value.Cmp(b.value)
}

// Equal reports whether both value and currency are equal.
func (a Amount) Equal(b Amount) bool { return a.currency == b.currency && a.value.Equal(b.value) }

// MarshalText writes the canonical text, so JSON carries amounts as strings.
func (a Amount) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// RoundingMode says how an exact product is brought to the currency's scale.
type RoundingMode string

const (
	// RoundDown truncates toward zero: the remainder is never created (the default for rebates).
	RoundDown RoundingMode = "down"
	// RoundHalfEven is banker's rounding.
	RoundHalfEven RoundingMode = "half_even"
	// RoundHalfUp rounds halves away from zero (withdrawal fees: the customary commercial rounding;
	// not offered for rebates).
	RoundHalfUp RoundingMode = "half_up"
)

// ParseRoundingMode accepts "down" or "half_even".
func ParseRoundingMode(s string) (RoundingMode, error) {
	switch RoundingMode(s) {
	case RoundDown, RoundHalfEven:
		return RoundingMode(s), nil
	}
	return "", fmt.Errorf("unknown rounding mode %q: want \"down\" or \"half_even\"", s)
}

// Round brings an exact decimal to currency c's scale with mode m.
func Round(d decimal.Decimal, c Currency, m RoundingMode) Amount {
	var v decimal.Decimal
	switch m {
	case RoundHalfEven:
		v = d.RoundBank(c.Scale())
	case RoundHalfUp:
		v = d.Round(c.Scale())
	default:
		v = d.Truncate(c.Scale())
	}
	return Amount{value: v, currency: c}
}

// MulRate multiplies by an exact rate and rounds to the currency's scale with mode m.
func (a Amount) MulRate(rate decimal.Decimal, m RoundingMode) Amount {
	return Round(a.value.Mul(rate), a.currency, m)
}

// Split allocates a over weights so that the parts sum exactly to a: each part gets the rounded-down
// share, and the units left over go one at a time to the largest remainders (ties to the earlier
// weight). Weights must be non-negative with a positive sum.
func Split(a Amount, weights []decimal.Decimal) ([]Amount, error) {
	if len(weights) == 0 {
		return nil, errors.New("split: no weights")
	}
	total := decimal.Zero
	for _, w := range weights {
		if w.IsNegative() {
			return nil, errors.New("split: negative weight")
		}
		total = total.Add(w)
	}
	if !total.IsPositive() {
		return nil, errors.New("split: weights sum to zero")
	}
	scale := a.currency.Scale()
	unit := decimal.New(1, -scale)
	if a.value.IsNegative() {
		unit = unit.Neg()
	}
	parts := make([]Amount, len(weights))
	type rem struct {
		i int
		r decimal.Decimal
	}
	rems := make([]rem, len(weights))
	allocated := decimal.Zero
	for i, w := range weights {
		exact := a.value.Mul(w).DivRound(total, scale+20)
		down := exact.Truncate(scale)
		parts[i] = Amount{value: down, currency: a.currency}
		rems[i] = rem{i: i, r: exact.Sub(down).Abs()}
		allocated = allocated.Add(down)
	}
	left := a.value.Sub(allocated).Div(unit).IntPart()
	sort.SliceStable(rems, func(x, y int) bool { return rems[x].r.GreaterThan(rems[y].r) })
	for k := int64(0); k < left; k++ {
		i := rems[k%int64(len(rems))].i
		parts[i].value = parts[i].value.Add(unit)
	}
	return parts, nil
}
