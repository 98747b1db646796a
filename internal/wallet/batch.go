package wallet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/idem"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// Provider pays batches: a bank file, a payment API, or the simulated provider. Implementations live
// beside this package (wallet/csvbank, wallet/simulated).
type Provider interface {
	// Name is what batches record as their provider ("csv", "simulated").
	Name() string
	// Submit hands a batch over for payment. It must be idempotent by batch id: after a crash
	// between submitting and recording the submission it is called again with the same batch, and
	// must not pay twice. Results come back through Wallet.ApplyResults.
	Submit(ctx context.Context, b Batch) error
}

// Batch statuses.
const (
	BatchOpen      = "open"
	BatchSubmitted = "submitted"
	BatchCompleted = "completed"
)

// Item statuses.
const (
	ItemPending = "pending"
	ItemPaid    = "paid"
	ItemFailed  = "failed"
)

// Batch is a payout batch with its items.
type Batch struct {
	ID          string
	Currency    money.Currency
	Provider    string
	Status      string
	Amount      money.Amount
	Fee         money.Amount
	Net         money.Amount
	CreatedAt   time.Time
	SubmittedAt *time.Time
	CompletedAt *time.Time
	Items       []Item
}

// Item is one withdrawal in a batch. Destination is whole: mask it before showing it to anyone
// but an operator or the provider.
type Item struct {
	ID           int64
	WithdrawalID string
	MemberID     string
	Destination  Destination
	Amount       money.Amount
	Fee          money.Amount
	Net          money.Amount
	Status       string
	Reference    string
	Reason       string
	SettledAt    *time.Time
	EntryID      int64
}

// CutRequest is a POST /v1/payout-batches body. ID is optional: with one the cut is idempotent
// (the same id answers the same batch).
type CutRequest struct {
	ID       string
	Currency string
	Max      int
}

var batchIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,100}$`)

// Cut gathers every approved withdrawal of a currency that is in no batch, oldest first, up to Max
// (default 5,000), into a new batch, and schedules its submission in the same transaction. With
// nothing to gather it returns a nil batch. Withdrawals another cut holds are skipped, so two cuts
// at once never share one (and the database refuses a withdrawal in two batches).
func (w *Wallet) Cut(ctx context.Context, r CutRequest) (*Batch, bool, error) {
	c := money.Currency(r.Currency)
	if !c.Valid() || c == money.PTS {
		return nil, false, apperr.New(apperr.UnsupportedCurrency, "currency %q is not one payouts are made in (CNY, USD, EUR, JPY)", r.Currency)
	}
	if r.ID != "" && !batchIDPattern.MatchString(r.ID) {
		return nil, false, apperr.New(apperr.Validation, "id must be 1 to 100 letters, digits or _.:-")
	}
	if r.Max <= 0 {
		r.Max = 5000
	}
	if w.submit == nil {
		return nil, false, errors.New("wallet: no submit scheduler wired")
	}
	var out *Batch
	var replayed bool
	err := w.ledger.Transact(ctx, func(tx pgx.Tx) error {
		if r.ID == "" {
			var err error
			out, err = w.cut(ctx, tx, newBatchID(w.clock.Now()), c, r.Max)
			return err
		}
		req := idem.Request{Scope: "payout_batch", Key: r.ID, Hash: idem.HashOf(struct{ Currency string }{r.Currency})}
		// The stored answer is the batch id (or "" for nothing cut); the batch is read afresh.
		id, rep, err := idem.Do(ctx, tx, req, func() (string, error) {
			b, err := w.cut(ctx, tx, r.ID, c, r.Max)
			if b == nil || err != nil {
				return "", err
			}
			out = b
			return b.ID, nil
		})
		replayed = rep
		if err == nil && rep && id != "" {
			out, err = w.batch(ctx, tx, id)
		}
		return err
	})
	return out, replayed, err
}

func newBatchID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "pb_" + now.UTC().Format("20060102T150405") + "_" + hex.EncodeToString(b[:])
}

func (w *Wallet) cut(ctx context.Context, tx pgx.Tx, id string, c money.Currency, max int) (*Batch, error) {
	q := store.New(tx)
	cands, err := q.PayoutCandidates(ctx, sqlc.PayoutCandidatesParams{Currency: string(c), MaxItems: int32(max)})
	if err != nil {
		return nil, fmt.Errorf("payout candidates: %w", err)
	}
	if len(cands) == 0 {
		return nil, nil
	}
	amount, fee := decimal.Zero, decimal.Zero
	ids := make([]string, len(cands))
	for i, cd := range cands {
		amount, fee = amount.Add(cd.Amount), fee.Add(cd.Fee)
		ids[i] = cd.ID
	}
	now := w.clock.Now()
	if err := q.PayoutBatchInsert(ctx, sqlc.PayoutBatchInsertParams{ID: id, Currency: string(c), Provider: w.provider.Name(),
		ItemCount: int32(len(cands)), Amount: amount, Fee: fee, Net: amount.Sub(fee), CreatedAt: now}); err != nil {
		return nil, fmt.Errorf("insert batch: %w", err)
	}
	if err := q.PayoutItemsInsert(ctx, sqlc.PayoutItemsInsertParams{BatchID: pgtype.Text{String: id, Valid: true}, WithdrawalIds: ids}); err != nil {
		return nil, fmt.Errorf("insert batch items: %w", err)
	}
	if err := w.submit(ctx, tx, id); err != nil {
		return nil, fmt.Errorf("schedule submission of %s: %w", id, err)
	}
	return w.batch(ctx, tx, id)
}

// Batch reads a batch with its items.
func (w *Wallet) Batch(ctx context.Context, id string) (Batch, error) {
	b, err := w.batch(ctx, w.pool, id)
	if err != nil {
		return Batch{}, err
	}
	return *b, nil
}

// BatchStatus is a batch's status alone (open, submitted or completed), without its items.
func (w *Wallet) BatchStatus(ctx context.Context, id string) (string, error) {
	b, err := batchHeader(ctx, store.New(w.pool), id)
	if err != nil {
		return "", err
	}
	return b.Status, nil
}

func (w *Wallet) batch(ctx context.Context, db store.DBTX, id string) (*Batch, error) {
	q := store.New(db)
	b, err := batchHeader(ctx, q, id)
	if err != nil {
		return nil, err
	}
	items, err := q.PayoutItemsByBatch(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, row := range items {
		it, err := itemFromRow(row)
		if err != nil {
			return nil, err
		}
		b.Items = append(b.Items, it)
	}
	return b, nil
}

// batchHeader reads a batch's row: its totals and status, no items.
func batchHeader(ctx context.Context, q *store.Queries, id string) (*Batch, error) {
	row, err := q.PayoutBatchGet(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, apperr.New(apperr.NotFound, "no payout batch %q", id)
	}
	if err != nil {
		return nil, err
	}
	c := money.Currency(row.Currency)
	b := &Batch{ID: row.ID, Currency: c, Provider: row.Provider, Status: row.Status, CreatedAt: row.CreatedAt,
		SubmittedAt: row.SubmittedAt, CompletedAt: row.CompletedAt}
	if b.Amount, err = money.New(row.Amount, c); err != nil {
		return nil, err
	}
	if b.Fee, err = money.New(row.Fee, c); err != nil {
		return nil, err
	}
	if b.Net, err = money.New(row.Net, c); err != nil {
		return nil, err
	}
	return b, nil
}

func itemFromRow(it sqlc.PayoutItemsByBatchRow) (Item, error) {
	c := money.Currency(it.Currency)
	i := Item{ID: it.ID, WithdrawalID: it.WithdrawalID, MemberID: it.MemberID, Status: it.Status,
		Reference: it.Reference, Reason: it.Reason, SettledAt: it.SettledAt}
	if it.EntryID != nil {
		i.EntryID = *it.EntryID
	}
	var err error
	if i.Amount, err = money.New(it.Amount, c); err != nil {
		return Item{}, err
	}
	if i.Fee, err = money.New(it.Fee, c); err != nil {
		return Item{}, err
	}
	i.Net, _ = i.Amount.Sub(i.Fee)
	if err := json.Unmarshal(it.Destination, &i.Destination); err != nil {
		return Item{}, fmt.Errorf("item %d destination: %w", it.ID, err)
	}
	return i, nil
}

// Submit hands an open batch to the provider and records that it did; a batch already submitted
// is left alone. It is the submission job's work: after a crash between the provider's Submit and
// the record, the job runs again and the provider, idempotent by batch id, pays once.
func (w *Wallet) Submit(ctx context.Context, batchID string) error {
	b, err := w.Batch(ctx, batchID)
	if err != nil {
		return err
	}
	if b.Status != BatchOpen {
		return nil
	}
	if err := w.provider.Submit(ctx, b); err != nil {
		return fmt.Errorf("provider %s: submit %s: %w", w.provider.Name(), batchID, err)
	}
	now := w.clock.Now()
	return store.New(w.pool).PayoutBatchSubmitted(ctx, sqlc.PayoutBatchSubmittedParams{ID: batchID, Now: &now})
}
