package program_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/program"
)

func rules(edit func(r *program.RulesJSON)) []byte {
	r := program.RulesJSON{Currency: "CNY", HoldPeriod: "168h", Rounding: "down", LevelRates: []string{"0.05"},
		FirstOrderBonus: "0.00", MaxRebateRatio: "0.15", Points: program.PointsJSON{PerUnit: "0", Validity: "8760h"},
		Withdrawal: program.WithdrawalJSON{Min: "10.00", Max: "5000.00", DailyCount: 3, DailyAmount: "10000.00",
			MonthlyAmount: "50000.00", FeeRate: "0.01", FeeMin: "1.00", ReviewAbove: "2000.00"}}
	if edit != nil {
		edit(&r)
	}
	b, _ := json.Marshal(r)
	return b
}

func TestTimezone(t *testing.T) {
	t.Parallel()
	_, r, err := program.ParseRules(rules(nil))
	require.NoError(t, err)
	require.Equal(t, time.UTC, r.Location, "the default zone is UTC")
	_, r, err = program.ParseRules(rules(func(r *program.RulesJSON) { r.Timezone = "Asia/Shanghai" }))
	require.NoError(t, err)
	require.Equal(t, "Asia/Shanghai", r.Location.String())
	for _, tz := range []string{"Mars/Olympus", "Local", "../../etc/passwd", "Asia/Shanghai\x00", strings.Repeat("A", 100)} {
		_, _, err := program.ParseRules(rules(func(r *program.RulesJSON) { r.Timezone = tz }))
		require.ErrorIs(t, err, program.ErrInvalidProgram, tz)
	}
}

func TestWithdrawalRulesAreKept(t *testing.T) {
	t.Parallel()
	_, r, err := program.ParseRules(rules(nil))
	require.NoError(t, err)
	w := r.Withdrawal
	require.Equal(t, "10.00", w.Min.String())
	require.Equal(t, "5000.00", w.Max.String())
	require.Equal(t, 3, w.DailyCount)
	require.Equal(t, "0.01", w.FeeRate.String())
	require.Equal(t, "2000.00", w.ReviewAbove.String())
	_, _, err = program.ParseRules(rules(func(r *program.RulesJSON) { r.Withdrawal.Max = "5.00" }))
	require.ErrorIs(t, err, program.ErrInvalidProgram, "max below min")
	_, _, err = program.ParseRules(rules(func(r *program.RulesJSON) { r.Withdrawal.FeeMin = "1.001" }))
	require.ErrorIs(t, err, program.ErrInvalidProgram, "more decimals than the currency")
}

// TestTheReadShapeIsAcceptedBack: GET /v1/program answers the rules with version and effective_at;
// a PUT of that body is accepted (the read-only fields are ignored), unknown fields are not.
func TestTheReadShapeIsAcceptedBack(t *testing.T) {
	t.Parallel()
	var m map[string]any
	require.NoError(t, json.Unmarshal(rules(nil), &m))
	m["version"], m["effective_at"] = 7, "2026-01-01T00:00:00Z"
	body, _ := json.Marshal(m)
	j, _, err := program.ParseRules(body)
	require.NoError(t, err)
	require.Equal(t, "CNY", j.Currency)
	m["bogus"] = 1
	body, _ = json.Marshal(m)
	_, _, err = program.ParseRules(body)
	require.ErrorIs(t, err, program.ErrInvalidProgram)
	require.NotContains(t, err.Error(), "Go", "details are for people")
}
