package ledger

import (
	"encoding/hex"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/money"
)

// hashRequest is a request with postings that sort on every field: two share an account and
// differ by side, two by amount, and one account is a prefix of another.
func hashRequest() EntryRequest {
	cny := func(s string) money.Amount { return money.MustParse(s, money.CNY) }
	return EntryRequest{Key: "order-1:accrual", Kind: "accrual", RefersTo: 7,
		OccurredAt:     time.Date(2026, 11, 1, 8, 0, 0, 123456789, time.UTC),
		Metadata:       map[string]any{"order_id": "o-1", "note": "<&>"},
		AllowOverdraft: []string{"member:u1:available"},
		Postings: []PostingRequest{
			{Account: "member:u1:held", Side: Credit, Amount: cny("2.50")},
			{Account: "member:u1:held", Side: Debit, Amount: cny("0.50")},
			{Account: "member:u10:held", Side: Credit, Amount: cny("1.00")},
			{Account: "member:u1:held", Side: Credit, Amount: cny("10.00")},
			{Account: RebateExpense, Side: Debit, Amount: cny("13.00")},
		}}
}

// TestRequestHashIsStable: the hash of a request is stored with its entry and compared on every
// replay, so its bytes may never change: this is the value the first version computed.
func TestRequestHashIsStable(t *testing.T) {
	r := hashRequest()
	meta, err := r.metadataJSON()
	require.NoError(t, err)
	require.Equal(t, "e31a00bd0ea28c4cd1ed51101030b7cc88a6b8e88f299f4bb137b348de9d34f3", hex.EncodeToString(r.hash(meta)))
}

// TestRequestHashIgnoresPostingOrder: postings are a set; every field of a posting counts.
func TestRequestHashIgnoresPostingOrder(t *testing.T) {
	r := hashRequest()
	meta, err := r.metadataJSON()
	require.NoError(t, err)
	want := r.hash(meta)
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		p := append([]PostingRequest(nil), r.Postings...)
		rnd.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
		shuffled := r
		shuffled.Postings = p
		require.Equal(t, want, shuffled.hash(meta))
	}
	changed := r
	changed.Postings = append([]PostingRequest(nil), r.Postings...)
	changed.Postings[1].Side = Credit
	require.NotEqual(t, want, changed.hash(meta))
}
