package ledger

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/money"
)

// Side is the side of a posting.
type Side string

// The two sides.
const (
	Debit  Side = "debit"
	Credit Side = "credit"
)

// PostingRequest moves Amount (always positive) to one side of one account.
type PostingRequest struct {
	Account string
	Side    Side
	Amount  money.Amount
}

// EntryRequest is one balanced journal entry to write.
type EntryRequest struct {
	// Key is the client's idempotency key: the same key with the same request replays the original
	// entry; with a different request it is refused.
	Key        string
	Kind       string
	OccurredAt time.Time
	Metadata   map[string]any
	// RefersTo is the entry this one reverses or follows (0 for none).
	RefersTo int64
	Postings []PostingRequest
	// AllowOverdraft names accounts this entry may take below zero even though they are otherwise
	// kept non-negative by the ledger (a member's available balance during a clawback).
	AllowOverdraft []string
}

// Posting is a written posting.
type Posting struct {
	ID      int64        `json:"id"`
	Account string       `json:"account"`
	Side    Side         `json:"side"`
	Amount  money.Amount `json:"amount"`

	// currency and exact are the stored values, kept for hashing even when they are not a valid
	// Amount (a row altered behind the database's constraints); accountID is the account's row.
	currency  money.Currency
	exact     decimal.Decimal
	accountID int64
}

// Entry is a written journal entry.
type Entry struct {
	ID         int64           `json:"id"`
	Key        string          `json:"idempotency_key"`
	Kind       string          `json:"kind"`
	OccurredAt time.Time       `json:"occurred_at"`
	RecordedAt time.Time       `json:"recorded_at"`
	Metadata   json.RawMessage `json:"metadata"`
	RefersTo   int64           `json:"refers_to,omitempty"`
	Postings   []Posting       `json:"postings"`
	// Replayed is true when the entry existed already and was returned for a repeated request.
	Replayed bool `json:"-"`
}

var kindPattern = regexp.MustCompile(`^[a-z_]{1,40}$`)

// validate checks everything the database would refuse, earlier and with a clearer message.
func (r *EntryRequest) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidEntry, fmt.Sprintf(format, args...))
	}
	if r.Key == "" || len(r.Key) > 300 {
		return bad("idempotency key must be 1 to 300 characters")
	}
	if !kindPattern.MatchString(r.Kind) {
		return bad("kind %q must be 1 to 40 lower-case letters or underscores", r.Kind)
	}
	if r.OccurredAt.IsZero() {
		return bad("occurred_at is required")
	}
	if len(r.Postings) < 2 {
		return bad("an entry needs at least two postings, got %d", len(r.Postings))
	}
	sums := map[money.Currency]decimal.Decimal{}
	for i, p := range r.Postings {
		if _, err := Classify(p.Account); err != nil {
			return err
		}
		if p.Side != Debit && p.Side != Credit {
			return bad("posting %d: side %q must be debit or credit", i, p.Side)
		}
		c := p.Amount.Currency()
		if !c.Valid() {
			return bad("posting %d: no currency", i)
		}
		if !p.Amount.IsPositive() {
			return bad("posting %d: amount %s must be positive", i, p.Amount)
		}
		if p.Side == Debit {
			sums[c] = sums[c].Add(p.Amount.Decimal())
		} else {
			sums[c] = sums[c].Sub(p.Amount.Decimal())
		}
	}
	for c, s := range sums {
		if !s.IsZero() {
			return bad("debits and credits in %s differ by %s", c, s.String())
		}
	}
	return nil
}

// metadataJSON encodes metadata with sorted keys (encoding/json sorts map keys).
func (r *EntryRequest) metadataJSON() (json.RawMessage, error) {
	if len(r.Metadata) == 0 {
		return json.RawMessage(`{}`), nil
	}
	b, err := json.Marshal(r.Metadata)
	if err != nil {
		return nil, fmt.Errorf("%w: metadata: %v", ErrInvalidEntry, err)
	}
	return b, nil
}

// hash is SHA-256 over the canonical request; occurred_at is cut to microseconds, the database's
// precision, so a replay read back from the database hashes the same.
func (r *EntryRequest) hash(meta json.RawMessage) []byte {
	var ps []canonicalPosting // nil without postings, as the struct's slice was
	for _, p := range r.Postings {
		ps = append(ps, canonicalPosting{Account: p.Account, Currency: string(p.Amount.Currency()), Side: p.Side, Amount: p.Amount.String()})
	}
	// The order of postings does not change an entry's effect, so it does not change the hash.
	// Field by field, which orders as the fields joined by NUL did (no field can hold a NUL).
	slices.SortFunc(ps, func(a, b canonicalPosting) int {
		return cmp.Or(strings.Compare(a.Account, b.Account), strings.Compare(a.Currency, b.Currency),
			strings.Compare(string(a.Side), string(b.Side)), strings.Compare(a.Amount, b.Amount))
	})
	// What the hash covers: everything that decides the entry's effect, as encoding/json wrote
	// struct{key, kind, occurred_at, metadata, refers_to, postings, allow_overdraft}; meta is
	// Marshal's own output, which Marshal would copy unchanged.
	b := make([]byte, 0, 256+128*len(ps))
	b = append(b, `{"key":`...)
	b = appendJSONString(b, r.Key)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, r.Kind)
	b = append(b, `,"occurred_at":`...)
	b = appendJSONTime(b, r.OccurredAt.Truncate(time.Microsecond))
	b = append(b, `,"metadata":`...)
	b = append(b, meta...)
	b = append(b, `,"refers_to":`...)
	b = strconv.AppendInt(b, r.RefersTo, 10)
	b = append(b, `,"postings":`...)
	b = appendJSONPostings(b, ps)
	b = append(b, `,"allow_overdraft":`...)
	b = appendJSONStrings(b, r.AllowOverdraft)
	b = append(b, '}')
	sum := sha256.Sum256(b)
	return sum[:]
}

func sameHash(a, b []byte) bool { return bytes.Equal(a, b) }

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}
