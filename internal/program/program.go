// Package program is the referral program's rules as versioned data: the JSON an operator sends and
// reads, its validation into the computed form, and the version in force at an instant. It is a
// leaf: internal/rebate (accrual, points) and internal/wallet (withdrawal limits and fees) both read
// it, and neither reaches into the other for the rules.
package program

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// MaxSkew is how far before the server's now a new version's effective_at may be (a client's
// "now" arrives a little late).
const MaxSkew = time.Minute

// MaxLevels is the hard ceiling of earning levels (PRODUCT.md §4).
const MaxLevels = 3

// RulesJSON is the program as clients send and read it: every amount and rate a string.
type RulesJSON struct {
	Currency        string          `json:"currency"`
	HoldPeriod      string          `json:"hold_period"`
	Rounding        string          `json:"rounding"`
	LevelRates      []string        `json:"level_rates"`
	Tiers           []TierJSON      `json:"tiers"`
	FirstOrderBonus string          `json:"first_order_bonus"`
	Milestones      []MilestoneJSON `json:"milestones"`
	MaxRebateRatio  string          `json:"max_rebate_ratio"`
	Points          PointsJSON      `json:"points"`
	Withdrawal      WithdrawalJSON  `json:"withdrawal"`
	// Timezone is an IANA name (default UTC): the days and months of withdrawal limits are counted in it.
	Timezone string `json:"timezone,omitempty"`
}

// TierJSON raises the level-1 rate from a number of converted invitees.
type TierJSON struct {
	MinConverted int    `json:"min_converted"`
	Level1Rate   string `json:"level1_rate"`
}

// MilestoneJSON pays a bonus when the referrer's converted invitees reach a count.
type MilestoneJSON struct {
	Converted int    `json:"converted"`
	Bonus     string `json:"bonus"`
}

// PointsJSON are the points rules.
type PointsJSON struct {
	PerUnit        string `json:"per_unit"`
	SignupReferrer int64  `json:"signup_referrer"`
	SignupReferee  int64  `json:"signup_referee"`
	Validity       string `json:"validity"`
}

// WithdrawalJSON are the withdrawal limits and fees (internal/wallet applies them).
type WithdrawalJSON struct {
	Min           string `json:"min"`
	Max           string `json:"max"`
	DailyCount    int    `json:"daily_count"`
	DailyAmount   string `json:"daily_amount"`
	MonthlyAmount string `json:"monthly_amount"`
	FeeRate       string `json:"fee_rate"`
	FeeMin        string `json:"fee_min"`
	ReviewAbove   string `json:"review_above"`
}

// Rules are the validated program, ready for computing.
type Rules struct {
	Currency        money.Currency
	HoldPeriod      time.Duration
	Rounding        money.RoundingMode
	LevelRates      []decimal.Decimal
	Tiers           []Tier
	FirstOrderBonus money.Amount
	Milestones      []Milestone
	MaxRebateRatio  decimal.Decimal
	PointsPerUnit   decimal.Decimal
	SignupReferrer  int64
	SignupReferee   int64
	PointsValidity  time.Duration
	Withdrawal      WithdrawalRules
	// Location is the program's time zone (Timezone), never nil.
	Location *time.Location
}

// WithdrawalRules are the validated withdrawal limits, all in the program's currency.
type WithdrawalRules struct {
	Min           money.Amount
	Max           money.Amount
	DailyCount    int
	DailyAmount   money.Amount
	MonthlyAmount money.Amount
	FeeRate       decimal.Decimal
	FeeMin        money.Amount
	ReviewAbove   money.Amount
}

// Tier is a validated tier.
type Tier struct {
	MinConverted int
	Level1Rate   decimal.Decimal
}

// Milestone is a validated milestone.
type Milestone struct {
	Converted int
	Bonus     money.Amount
}

// Program is one stored version.
type Program struct {
	Version     int64
	EffectiveAt time.Time
	JSON        RulesJSON
	Rules       Rules
}

// ErrInvalidProgram wraps every validation failure of a program.
var ErrInvalidProgram = apperr.New(apperr.Validation, "invalid program")

// readShape is what GET /v1/program answers: the rules with their read-only version and
// effective_at, which a PUT of the same body may carry back and which are ignored.
type readShape struct {
	RulesJSON
	Version     json.RawMessage `json:"version"`
	EffectiveAt json.RawMessage `json:"effective_at"`
}

// ParseRules decodes and validates a program body; unknown fields are refused.
func ParseRules(body []byte) (RulesJSON, Rules, error) {
	var rs readShape
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rs); err != nil {
		return rs.RulesJSON, Rules{}, fmt.Errorf("%w: the body is not a program (a JSON object with the fields of GET /v1/program)", ErrInvalidProgram)
	}
	j := rs.RulesJSON
	if dec.More() {
		return j, Rules{}, fmt.Errorf("%w: trailing data after the program", ErrInvalidProgram)
	}
	r, err := j.Validate()
	return j, r, err
}

func rate(field, s string, maxExclusive bool) (decimal.Decimal, error) {
	d, err := decimal.NewFromString(s)
	if err != nil || s == "" {
		return d, fmt.Errorf("%w: %s %q is not a decimal string", ErrInvalidProgram, field, s)
	}
	if d.IsNegative() || (maxExclusive && d.GreaterThanOrEqual(decimal.NewFromInt(1))) || d.GreaterThan(decimal.NewFromInt(1)) {
		return d, fmt.Errorf("%w: %s %s out of range", ErrInvalidProgram, field, s)
	}
	return d, nil
}

func duration(field, s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%w: %s %q is not a non-negative duration like \"168h\"", ErrInvalidProgram, field, s)
	}
	return d, nil
}

// Validate checks every rule of PRODUCT.md §5 and the rebate issue and returns the computed form.
func (j RulesJSON) Validate() (Rules, error) {
	var r Rules
	var err error
	bad := func(format string, args ...any) (Rules, error) {
		return Rules{}, fmt.Errorf("%w: %s", ErrInvalidProgram, fmt.Sprintf(format, args...))
	}
	if r.Currency, err = money.ParseCurrency(j.Currency); err != nil || r.Currency == money.PTS {
		return bad("currency %q must be CNY, USD, EUR or JPY", j.Currency)
	}
	amount := func(field, s string) (money.Amount, error) {
		a, err := money.Parse(s, r.Currency)
		if err != nil {
			return a, fmt.Errorf("%w: %s: %v", ErrInvalidProgram, field, err)
		}
		if a.IsNegative() {
			return a, fmt.Errorf("%w: %s must not be negative", ErrInvalidProgram, field)
		}
		return a, nil
	}
	if r.HoldPeriod, err = duration("hold_period", j.HoldPeriod); err != nil {
		return Rules{}, err
	}
	if r.Rounding, err = money.ParseRoundingMode(j.Rounding); err != nil {
		return bad("%v", err)
	}
	if len(j.LevelRates) < 1 || len(j.LevelRates) > MaxLevels {
		return bad("level_rates needs 1 to %d rates, got %d", MaxLevels, len(j.LevelRates))
	}
	for i, s := range j.LevelRates {
		d, err := rate(fmt.Sprintf("level_rates[%d]", i), s, true)
		if err != nil {
			return Rules{}, err
		}
		r.LevelRates = append(r.LevelRates, d)
	}
	for i, t := range j.Tiers {
		d, err := rate(fmt.Sprintf("tiers[%d].level1_rate", i), t.Level1Rate, true)
		if err != nil {
			return Rules{}, err
		}
		if t.MinConverted < 1 || (i > 0 && t.MinConverted <= j.Tiers[i-1].MinConverted) {
			return bad("tiers must have min_converted ≥ 1 and strictly ascending")
		}
		r.Tiers = append(r.Tiers, Tier{MinConverted: t.MinConverted, Level1Rate: d})
	}
	if r.FirstOrderBonus, err = amount("first_order_bonus", j.FirstOrderBonus); err != nil {
		return Rules{}, err
	}
	for i, m := range j.Milestones {
		b, err := amount(fmt.Sprintf("milestones[%d].bonus", i), m.Bonus)
		if err != nil {
			return Rules{}, err
		}
		if m.Converted < 1 || (i > 0 && m.Converted <= j.Milestones[i-1].Converted) {
			return bad("milestones must have converted ≥ 1 and strictly ascending")
		}
		r.Milestones = append(r.Milestones, Milestone{Converted: m.Converted, Bonus: b})
	}
	if r.MaxRebateRatio, err = rate("max_rebate_ratio", j.MaxRebateRatio, false); err != nil {
		return Rules{}, err
	}
	if r.PointsPerUnit, err = decimal.NewFromString(j.Points.PerUnit); err != nil || r.PointsPerUnit.IsNegative() {
		return bad("points.per_unit %q must be a non-negative decimal string", j.Points.PerUnit)
	}
	if j.Points.SignupReferrer < 0 || j.Points.SignupReferee < 0 {
		return bad("sign-up points must not be negative")
	}
	r.SignupReferrer, r.SignupReferee = j.Points.SignupReferrer, j.Points.SignupReferee
	if r.PointsValidity, err = duration("points.validity", j.Points.Validity); err != nil {
		return Rules{}, err
	}
	w := j.Withdrawal
	for _, f := range []struct {
		name, v string
		into    *money.Amount
	}{{"withdrawal.min", w.Min, &r.Withdrawal.Min}, {"withdrawal.max", w.Max, &r.Withdrawal.Max},
		{"withdrawal.daily_amount", w.DailyAmount, &r.Withdrawal.DailyAmount},
		{"withdrawal.monthly_amount", w.MonthlyAmount, &r.Withdrawal.MonthlyAmount},
		{"withdrawal.fee_min", w.FeeMin, &r.Withdrawal.FeeMin}, {"withdrawal.review_above", w.ReviewAbove, &r.Withdrawal.ReviewAbove}} {
		if *f.into, err = amount(f.name, f.v); err != nil {
			return Rules{}, err
		}
	}
	if r.Withdrawal.FeeRate, err = rate("withdrawal.fee_rate", w.FeeRate, true); err != nil {
		return Rules{}, err
	}
	if w.DailyCount < 0 {
		return bad("withdrawal.daily_count must not be negative")
	}
	r.Withdrawal.DailyCount = w.DailyCount
	if r.Withdrawal.Max.Cmp(r.Withdrawal.Min) < 0 {
		return bad("withdrawal.max must not be below withdrawal.min")
	}
	tz := j.Timezone
	if tz == "" {
		tz = "UTC"
	}
	// time.LoadLocation also accepts "Local" and file paths; a program's zone must be a plain IANA name.
	if tz == "Local" || strings.ContainsAny(tz, ".\\") || len(tz) > 64 {
		return bad("timezone %q is not an IANA time zone name such as Asia/Shanghai", j.Timezone)
	}
	if r.Location, err = time.LoadLocation(tz); err != nil {
		return bad("timezone %q is not an IANA time zone name such as Asia/Shanghai", j.Timezone)
	}
	return r, nil
}

// Level1Rate is a referrer's level-1 rate given its converted invitees (tiers are ascending).
func (r Rules) Level1Rate(converted int) decimal.Decimal {
	out := r.LevelRates[0]
	for _, t := range r.Tiers {
		if converted >= t.MinConverted {
			out = t.Level1Rate
		}
	}
	return out
}

// parsed caches stored programs by their stored text: a version never changes once written, so each
// is parsed once per process instead of once per event. (Keyed by text, not version number, because
// one process may talk to several databases, as the tests do.)
var parsed sync.Map

type parsedRules struct {
	json  RulesJSON
	rules Rules
}

// FromStored builds a Program from a stored row's columns.
func FromStored(version int64, effective time.Time, raw []byte) (Program, error) {
	if p, ok := parsed.Load(string(raw)); ok {
		pr := p.(parsedRules)
		return Program{Version: version, EffectiveAt: effective, JSON: pr.json, Rules: pr.rules}, nil
	}
	j, r, err := ParseRules(raw)
	if err != nil {
		return Program{}, fmt.Errorf("stored program %d: %w", version, err)
	}
	parsed.Store(string(raw), parsedRules{json: j, rules: r})
	return Program{Version: version, EffectiveAt: effective, JSON: j, Rules: r}, nil
}

// At is the version in force at an instant.
func At(ctx context.Context, db store.DBTX, at time.Time) (Program, error) {
	row, err := store.New(db).ProgramAt(ctx, at)
	if errors.Is(err, pgx.ErrNoRows) {
		return Program{}, apperr.New(apperr.Validation, "no program is in force at %s", at.Format(time.RFC3339))
	}
	if err != nil {
		return Program{}, fmt.Errorf("read program: %w", err)
	}
	return FromStored(row.Version, row.EffectiveAt, row.Rules)
}

// Put validates and stores a new version effective from effectiveAt. Back-dating is refused: a
// version may not take effect before notBefore (the API passes now less MaxSkew; zero for none),
// nor before the newest version already stored, because events of that past may have been applied
// under the rules then in force, and late events of it would be computed under different ones.
func Put(ctx context.Context, db store.DBTX, body []byte, effectiveAt, notBefore time.Time) (Program, error) {
	j, r, err := ParseRules(body)
	if err != nil {
		return Program{}, err
	}
	if !notBefore.IsZero() && effectiveAt.Before(notBefore) {
		return Program{}, apperr.New(apperr.Validation, "effective_at %s is in the past: a new version takes effect now or later",
			effectiveAt.UTC().Format(time.RFC3339))
	}
	canonical, _ := json.Marshal(j)
	row, err := store.New(db).ProgramInsertNotBefore(ctx, sqlc.ProgramInsertNotBeforeParams{EffectiveAt: effectiveAt, Rules: canonical})
	if errors.Is(err, pgx.ErrNoRows) {
		return Program{}, apperr.New(apperr.Validation, "effective_at %s is before the newest version's: versions take effect in order",
			effectiveAt.UTC().Format(time.RFC3339))
	}
	if err != nil {
		return Program{}, fmt.Errorf("store program: %w", err)
	}
	return Program{Version: row.Version, EffectiveAt: row.EffectiveAt, JSON: j, Rules: r}, nil
}

// List lists every version, newest first.
func List(ctx context.Context, db store.DBTX) ([]Program, error) {
	rows, err := store.New(db).ProgramList(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Program, 0, len(rows))
	for _, row := range rows {
		p, err := FromStored(row.Version, row.EffectiveAt, row.Rules)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
