// Package ledger is the double-entry journal: accounts, balanced entries, cached balances, point-in-time
// balances, the trial balance, sealing into a hash chain, and verification. Every money invariant
// of PRODUCT.md §2 that concerns the journal is enforced here and, first of all, in the database.
package ledger

import (
	"fmt"
	"regexp"
	"strings"
)

// AccountKind is the accounting class of an account; it decides the account's normal side.
type AccountKind string

// The account kinds of the chart.
const (
	Asset     AccountKind = "asset"
	Liability AccountKind = "liability"
	Income    AccountKind = "income"
	Expense   AccountKind = "expense"
)

// DebitNormal reports whether debits increase the account's balance (assets and expenses).
func (k AccountKind) DebitNormal() bool { return k == Asset || k == Expense }

// AccountSpec is how the chart says an account behaves.
type AccountSpec struct {
	Kind AccountKind
	// AllowNegative: the database lets the balance go below zero. Member available balances allow it
	// only for clawbacks (see EntryRequest.AllowOverdraft); platform accounts always.
	AllowNegative bool
	// Shards > 1 marks a hot account: its cached balance is spread over that many rows so that
	// concurrent entries do not queue on one row lock (docs/decisions/0002-hot-accounts.md).
	Shards int16
}

// HotShards is how many balance rows a hot platform account has. With 16 writers and 32 rows, two
// writers pick the same row in about 40% of commits, but each waits for only one other commit.
const HotShards = 128

var platformAccounts = map[string]AccountSpec{
	"platform:rebate_expense":  {Kind: Expense, AllowNegative: true, Shards: HotShards},
	"platform:cash":            {Kind: Asset, AllowNegative: true, Shards: HotShards},
	"platform:fee_income":      {Kind: Income, AllowNegative: true, Shards: HotShards},
	"platform:points_redeemed": {Kind: Expense, AllowNegative: true, Shards: HotShards},
	"platform:points_expired":  {Kind: Income, AllowNegative: true, Shards: HotShards},
}

var memberAccounts = map[string]AccountSpec{
	"held":        {Kind: Liability, AllowNegative: false, Shards: 1},
	"available":   {Kind: Liability, AllowNegative: true, Shards: 1},
	"withdrawing": {Kind: Liability, AllowNegative: false, Shards: 1},
}

// MemberIDPattern is what a member id may look like: it becomes part of account codes.
var MemberIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,64}$`)

// Classify returns the chart's rules for an account code, or an error for a code outside the chart
// (PRODUCT.md §3): `platform:<name>` for the five platform accounts, `member:<id>:<held|available|withdrawing>`.
func Classify(code string) (AccountSpec, error) {
	if spec, ok := platformAccounts[code]; ok {
		return spec, nil
	}
	parts := strings.Split(code, ":")
	if len(parts) == 3 && parts[0] == "member" && MemberIDPattern.MatchString(parts[1]) {
		if spec, ok := memberAccounts[parts[2]]; ok {
			return spec, nil
		}
	}
	return AccountSpec{}, fmt.Errorf("%w: %q is not in the chart of accounts", ErrUnknownAccount, code)
}

// MemberAccount is the code of a member's account, e.g. MemberAccount("u42", "held") = "member:u42:held".
func MemberAccount(memberID, bucket string) string { return "member:" + memberID + ":" + bucket }

// Platform account codes.
const (
	RebateExpense  = "platform:rebate_expense"
	Cash           = "platform:cash"
	FeeIncome      = "platform:fee_income"
	PointsRedeemed = "platform:points_redeemed"
	PointsExpired  = "platform:points_expired"
)
