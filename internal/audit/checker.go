package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/clock"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/metrics"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/notify"
	"github.com/rebate-ledger/rebate/internal/page"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// MaxCheckEntries bounds one run of the checker; a backlog is worked off over several runs.
const MaxCheckEntries = 50_000

// Check is one run of the checker.
type Check struct {
	ID         int64     `json:"id"`
	FromSeq    int64     `json:"from_seq"`
	ToSeq      int64     `json:"to_seq"`
	Entries    int64     `json:"entries"`
	Accounts   int64     `json:"accounts"`
	Status     string    `json:"status"`
	Violations []string  `json:"violations"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
}

// Checker recomputes the invariants over what was sealed since its last run: the chain's links and
// hashes, every entry balanced per currency, the cached balance of every account those entries
// touched against the sum of its postings, members' held against their unreleased lots, and
// members' withdrawing against their withdrawals in flight. Each run is a row of audit_checks.
type Checker struct {
	pool  *pgxpool.Pool
	clock clock.Clock
}

// NewChecker is a checker on the system clock.
func NewChecker(pool *pgxpool.Pool) *Checker { return &Checker{pool: pool, clock: clock.System{}} }

// Run checks the next stretch of the chain (at most MaxCheckEntries) and records the result. With
// nothing new sealed it records nothing and returns a nil check.
func (c *Checker) Run(ctx context.Context) (*Check, error) {
	started := c.clock.Now()
	tx, err := c.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	q := store.New(tx)
	last, err := q.AuditCheckLast(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the last check: %w", err)
	}
	head, _, err := ledger.ChainHead(ctx, tx)
	if err != nil {
		return nil, err
	}
	if head <= last {
		return nil, nil
	}
	from, to := last+1, min(head, last+MaxCheckEntries)
	rep, err := ledger.VerifyRange(ctx, tx, from, to)
	if err != nil {
		return nil, err
	}
	problems := rep.Problems
	more, err := memberChecks(ctx, q, rep.Accounts)
	if err != nil {
		return nil, err
	}
	problems = append(problems, more...)
	if err := tx.Rollback(ctx); err != nil {
		return nil, err
	}
	ch := &Check{FromSeq: from, ToSeq: to, Entries: rep.Entries, Accounts: int64(len(rep.Accounts)), Status: "ok",
		Violations: problems, StartedAt: started, FinishedAt: c.clock.Now()}
	if len(problems) > 0 {
		ch.Status = "violations"
	} else {
		ch.Violations = []string{}
	}
	body, _ := json.Marshal(ch.Violations)
	// Written in a transaction of its own (the check read a read-only snapshot); a run that lost
	// a race with another process's run for the same stretch is refused by nothing but harmless:
	// both found the same.
	// The check and its audit.violation notification commit together.
	err = store.WithTx(ctx, c.pool, func(tx pgx.Tx) error {
		id, err := store.New(tx).AuditCheckInsert(ctx, sqlc.AuditCheckInsertParams{FromSeq: from, ToSeq: to, Entries: rep.Entries,
			Accounts: ch.Accounts, Status: ch.Status, Violations: body, StartedAt: started, FinishedAt: ch.FinishedAt})
		if err != nil {
			return fmt.Errorf("record the check: %w", err)
		}
		ch.ID = id
		if len(problems) == 0 {
			return nil
		}
		told := *ch
		told.Violations = ch.Violations[:min(len(ch.Violations), 100)] // the rest: GET /v1/reports/checks
		return notify.Write(ctx, tx, notify.Note{Type: notify.AuditViolation, Data: struct {
			Check
			Total int `json:"violations_total"`
		}{told, len(ch.Violations)}})
	})
	if err != nil {
		return nil, err
	}
	metrics.AuditChecked(to, len(problems), ch.FinishedAt)
	return ch, nil
}

// memberChecks compares members' held and withdrawing balances with what the rebate lots and the
// withdrawals say they must be.
func memberChecks(ctx context.Context, q *store.Queries, accts []ledger.AccountBalance) ([]string, error) {
	held := map[string]money.Amount{}
	withdrawing := map[string]money.Amount{}
	var heldMembers, wMembers []string
	for _, a := range accts {
		parts := strings.Split(a.Code, ":")
		if len(parts) != 3 || parts[0] != "member" {
			continue
		}
		key := parts[1] + " " + string(a.Currency)
		switch parts[2] {
		case "held":
			held[key] = a.Balance
			heldMembers = append(heldMembers, parts[1])
		case "withdrawing":
			withdrawing[key] = a.Balance
			wMembers = append(wMembers, parts[1])
		}
	}
	var out []string
	if len(heldMembers) > 0 {
		rows, err := q.LotHeldByMembers(ctx, heldMembers)
		if err != nil {
			return nil, fmt.Errorf("read lots: %w", err)
		}
		prizes, err := q.CampaignPrizesHeldByMembers(ctx, heldMembers)
		if err != nil {
			return nil, fmt.Errorf("read campaign prizes: %w", err)
		}
		out = append(out, compare("held", "unreleased rebate lots and campaign prizes", held, func(yield func(string, decimal.Decimal)) {
			for _, r := range rows {
				yield(r.BeneficiaryID+" "+r.Currency, r.Held)
			}
			for _, r := range prizes {
				yield(r.MemberID+" "+r.Currency, r.Held)
			}
		})...)
	}
	if len(wMembers) > 0 {
		rows, err := q.WithdrawalInFlightByMembers(ctx, wMembers)
		if err != nil {
			return nil, fmt.Errorf("read withdrawals: %w", err)
		}
		out = append(out, compare("withdrawing", "withdrawals in flight", withdrawing, func(yield func(string, decimal.Decimal)) {
			for _, r := range rows {
				yield(r.MemberID+" "+r.Currency, r.Amount)
			}
		})...)
	}
	return out, nil
}

// compare reports every key whose balance differs from what the rows sum to (missing rows are zero).
func compare(bucket, what string, balances map[string]money.Amount, rows func(func(string, decimal.Decimal))) []string {
	want := map[string]decimal.Decimal{}
	rows(func(k string, d decimal.Decimal) { want[k] = want[k].Add(d) })
	var out []string
	for k, b := range balances {
		if !b.Decimal().Equal(want[k]) {
			member, cur, _ := strings.Cut(k, " ")
			out = append(out, fmt.Sprintf("member:%s:%s %s is %s, its %s sum to %s", member, bucket, cur, b, what, want[k]))
		}
	}
	return out
}

// Checks lists the checker's runs, newest first, after the cursor ("" from the newest).
func Checks(ctx context.Context, db store.DBTX, cursor string, limit int) ([]Check, string, error) {
	beforeID, err := page.ParseInt("audit_checks", cursor)
	if err != nil {
		return nil, "", err
	}
	limit = page.Limit(limit)
	rows, err := store.New(db).AuditCheckList(ctx, sqlc.AuditCheckListParams{BeforeID: beforeID, MaxRows: int32(limit + 1)})
	if err != nil {
		return nil, "", err
	}
	rows, more := page.Trim(rows, limit)
	next := ""
	if more {
		next = page.IntCursor("audit_checks", rows[len(rows)-1].ID)
	}
	out := make([]Check, 0, len(rows))
	for _, r := range rows {
		c := Check{ID: r.ID, FromSeq: r.FromSeq, ToSeq: r.ToSeq, Entries: r.Entries, Accounts: r.Accounts, Status: r.Status,
			StartedAt: r.StartedAt, FinishedAt: r.FinishedAt}
		if err := json.Unmarshal(r.Violations, &c.Violations); err != nil {
			return nil, "", err
		}
		out = append(out, c)
	}
	return out, next, nil
}
