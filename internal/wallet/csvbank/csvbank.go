// Package csvbank is the bank-file payout provider: a batch becomes a CSV file (RFC 4180) that an
// operator hands to the bank, and the bank's return file (or JSON) comes back through
// POST /v1/payout-batches/{id}/results. Submitting is recording that the file is ready: nothing
// leaves the service by itself, so a second submission of a batch is harmless.
package csvbank

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/wallet"
)

// Provider is the CSV bank-file provider.
type Provider struct{}

// Name is "csv".
func (Provider) Name() string { return "csv" }

// Submit has nothing to send: the file is made on demand from the batch (Write).
func (Provider) Submit(context.Context, wallet.Batch) error { return nil }

// Header is the bank file's first line.
var Header = []string{"item_id", "withdrawal_id", "member_id", "destination_type", "account", "name", "net_amount", "currency"}

// Write writes a batch as the bank file: one line per item with its destination in full.
func Write(w io.Writer, b wallet.Batch) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(Header); err != nil {
		return err
	}
	for _, it := range b.Items {
		if err := cw.Write([]string{strconv.FormatInt(it.ID, 10), it.WithdrawalID, it.MemberID, it.Destination.Type,
			it.Destination.Account, it.Destination.Name, it.Net.String(), string(b.Currency)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// MaxLines bounds a return file.
const MaxLines = wallet.MaxResults

// ReadResults reads the bank's return file: a header naming at least item_id and status (reference
// and reason when present; other columns, such as the bank file's own, are ignored), then one line
// per item.
func ReadResults(r io.Reader) ([]wallet.ItemResult, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 0
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, apperr.New(apperr.Validation, "the return file is empty")
	}
	if err != nil {
		return nil, apperr.New(apperr.Validation, "the return file is not CSV: %v", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimSpace(strings.ToLower(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	for _, need := range []string{"item_id", "status"} {
		if _, ok := col[need]; !ok {
			return nil, apperr.New(apperr.Validation, "the return file's header has no %s column", need)
		}
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var out []wallet.ItemResult
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, apperr.New(apperr.Validation, "the return file is not CSV at line %d", line)
		}
		if len(out) == MaxLines {
			return nil, apperr.New(apperr.Validation, "a return file holds at most %d lines", MaxLines)
		}
		id, err := wallet.ParseItemID(get(rec, "item_id"))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, wallet.ItemResult{ItemID: id, Status: get(rec, "status"), Reference: get(rec, "reference"), Reason: get(rec, "reason")})
	}
	if len(out) == 0 {
		return nil, apperr.New(apperr.Validation, "the return file has no lines after its header")
	}
	return out, nil
}
