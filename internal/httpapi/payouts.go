package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/auth"
	"github.com/rebate-ledger/rebate/internal/wallet"
	"github.com/rebate-ledger/rebate/internal/wallet/csvbank"
)

type batchItemJSON struct {
	ID           int64      `json:"id"`
	WithdrawalID string     `json:"withdrawal_id"`
	MemberID     string     `json:"member_id"`
	Destination  any        `json:"destination"`
	Amount       string     `json:"amount"`
	Fee          string     `json:"fee"`
	Net          string     `json:"net"`
	Status       string     `json:"status"`
	Reference    string     `json:"reference,omitempty"`
	Reason       string     `json:"reason,omitempty"`
	SettledAt    *time.Time `json:"settled_at,omitempty"`
	EntryID      int64      `json:"entry_id,omitempty"`
}

type batchJSON struct {
	ID          string          `json:"id"`
	Currency    string          `json:"currency"`
	Provider    string          `json:"provider"`
	Status      string          `json:"status"`
	ItemCount   int             `json:"item_count"`
	Amount      string          `json:"amount"`
	Fee         string          `json:"fee"`
	Net         string          `json:"net"`
	CreatedAt   time.Time       `json:"created_at"`
	SubmittedAt *time.Time      `json:"submitted_at"`
	CompletedAt *time.Time      `json:"completed_at"`
	Items       []batchItemJSON `json:"items"`
}

func toItemJSON(c echo.Context, it wallet.Item) batchItemJSON {
	out := batchItemJSON{ID: it.ID, WithdrawalID: it.WithdrawalID, MemberID: it.MemberID, Destination: it.Destination.Masked(),
		Amount: it.Amount.String(), Fee: it.Fee.String(), Net: it.Net.String(), Status: it.Status,
		Reference: it.Reference, Reason: it.Reason, SettledAt: it.SettledAt, EntryID: it.EntryID}
	if principal(c).Role == auth.Operator {
		out.Destination = it.Destination
	}
	return out
}

func toBatchJSON(c echo.Context, b wallet.Batch) batchJSON {
	out := batchJSON{ID: b.ID, Currency: string(b.Currency), Provider: b.Provider, Status: b.Status, ItemCount: len(b.Items),
		Amount: b.Amount.String(), Fee: b.Fee.String(), Net: b.Net.String(), CreatedAt: b.CreatedAt,
		SubmittedAt: b.SubmittedAt, CompletedAt: b.CompletedAt, Items: make([]batchItemJSON, 0, len(b.Items))}
	for _, it := range b.Items {
		out.Items = append(out.Items, toItemJSON(c, it))
	}
	return out
}

type cutRequest struct {
	ID       string `json:"id"`
	Currency string `json:"currency"`
}

// postPayoutBatch cuts a batch now: 201 with {"batch": {...}}, or 200 with {"batch": null} when no
// approved withdrawal of the currency waits.
func (s *server) postPayoutBatch(c echo.Context) error {
	var req cutRequest
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	b, replayed, err := s.cfg.Wallet.Cut(c.Request().Context(), wallet.CutRequest{ID: req.ID, Currency: req.Currency, Max: s.cfg.PayoutBatchMax})
	if err != nil {
		return err
	}
	if b == nil {
		return created(c, http.StatusOK, replayed, map[string]any{"batch": nil})
	}
	return created(c, http.StatusCreated, replayed, map[string]any{"batch": toBatchJSON(c, *b)})
}

// getPayoutBatch answers the batch, or with ?format=csv the provider's bank file (destinations in
// full: it is what the bank pays).
func (s *server) getPayoutBatch(c echo.Context) error {
	b, err := s.cfg.Wallet.Batch(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	switch c.QueryParam("format") {
	case "", "json":
		return c.JSON(http.StatusOK, toBatchJSON(c, b))
	case "csv":
		if principal(c).Role != auth.Operator {
			return &Error{Status: http.StatusForbidden, Code: "forbidden", Detail: "only an operator may download the bank file (it holds destinations in full)"}
		}
		var buf bytes.Buffer
		if err := csvbank.Write(&buf, b); err != nil {
			return err
		}
		c.Response().Header().Set("Content-Disposition", `attachment; filename="`+b.ID+`.csv"`)
		return c.Blob(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
	}
	return validation("format must be json or csv")
}

type resultJSON struct {
	ItemID    json.Number `json:"item_id"`
	Status    string      `json:"status"`
	Reference string      `json:"reference"`
	Reason    string      `json:"reason"`
}

type resultAnswer struct {
	ItemID   int64          `json:"item_id"`
	Status   int            `json:"status"`
	Replayed bool           `json:"replayed,omitempty"`
	Item     *batchItemJSON `json:"item,omitempty"`
	Problem  *Problem       `json:"problem,omitempty"`
}

// postPayoutResults applies results given as JSON {"items": [...]} or as the bank's return file
// (text/csv). Each item is answered on its own; the call answers 200 with the batch's new status.
func (s *server) postPayoutResults(c echo.Context) error {
	var results []wallet.ItemResult
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if strings.HasPrefix(ct, "text/csv") {
		body, err := readBody(c)
		if err != nil {
			return err
		}
		if results, err = csvbank.ReadResults(bytes.NewReader(body)); err != nil {
			return err
		}
	} else {
		var req struct {
			Items []resultJSON `json:"items"`
		}
		if err := decodeStrict(c, &req); err != nil {
			return err
		}
		for _, r := range req.Items {
			id, err := wallet.ParseItemID(r.ItemID.String())
			if err != nil {
				return err
			}
			results = append(results, wallet.ItemResult{ItemID: id, Status: r.Status, Reference: r.Reference, Reason: r.Reason})
		}
	}
	outs, err := s.cfg.Wallet.ApplyResults(c.Request().Context(), c.Param("id"), results)
	if err != nil {
		return err
	}
	answers := make([]resultAnswer, len(outs))
	for i, o := range outs {
		answers[i].ItemID = results[i].ItemID
		if o.Err != nil {
			p := toProblem(o.Err, s.cfg.Logger, requestID(c))
			answers[i].Status, answers[i].Problem = p.Status, &p
			continue
		}
		it := toItemJSON(c, o.Item)
		answers[i].Status, answers[i].Replayed, answers[i].Item = http.StatusOK, o.Replayed, &it
	}
	// The batch's status as it stands after this call (its items are not read: a bank's return file
	// answers thousands of them, and each call would read them all again).
	status, err := s.cfg.Wallet.BatchStatus(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"batch_id": c.Param("id"), "batch_status": status, "results": answers})
}

type batchTotalsJSON struct {
	BatchID       string    `json:"batch_id"`
	Currency      string    `json:"currency"`
	Status        string    `json:"status"`
	CreatedAt     time.Time `json:"created_at"`
	PaidCount     int       `json:"paid_count"`
	PaidAmount    string    `json:"paid_amount"`
	PaidNet       string    `json:"paid_net"`
	PaidFee       string    `json:"paid_fee"`
	FailedCount   int       `json:"failed_count"`
	FailedAmount  string    `json:"failed_amount"`
	PendingCount  int       `json:"outstanding_count"`
	PendingAmount string    `json:"outstanding_amount"`
}

type reconciliationJSON struct {
	Currency    string `json:"currency"`
	PaidNet     string `json:"paid_net"`
	CashPaidOut string `json:"cash_paid_out"`
	PaidFees    string `json:"paid_fees"`
	FeeIncome   string `json:"fee_income"`
	InFlight    string `json:"withdrawals_in_flight"`
	Withdrawing string `json:"withdrawing_balances"`
	OK          bool   `json:"ok"`
}

// getPayoutReport reconciles payouts with the journal: batches created in [from, to) totalled by
// result, and for all time, paid nets = platform:cash paid out, paid fees = platform:fee_income,
// withdrawals in flight = the members' withdrawing balances.
func (s *server) getPayoutReport(c echo.Context) error {
	from, to := time.Time{}, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := queryTimes(c, map[string]*time.Time{"from": &from, "to": &to}); err != nil {
		return err
	}
	rep, err := s.cfg.Wallet.Report(c.Request().Context(), from, to)
	if err != nil {
		return err
	}
	out := struct {
		Batches         []batchTotalsJSON    `json:"batches"`
		Reconciliations []reconciliationJSON `json:"reconciliation"`
	}{Batches: []batchTotalsJSON{}, Reconciliations: []reconciliationJSON{}}
	for _, b := range rep.Batches {
		out.Batches = append(out.Batches, batchTotalsJSON{BatchID: b.BatchID, Currency: string(b.Currency), Status: b.Status,
			CreatedAt: b.CreatedAt, PaidCount: b.PaidCount, PaidAmount: b.PaidAmount.String(), PaidNet: b.PaidNet.String(),
			PaidFee: b.PaidFee.String(), FailedCount: b.FailedCount, FailedAmount: b.FailedAmount.String(),
			PendingCount: b.PendingCount, PendingAmount: b.PendingAmount.String()})
	}
	for _, r := range rep.Reconciliations {
		out.Reconciliations = append(out.Reconciliations, reconciliationJSON{Currency: string(r.Currency), PaidNet: r.PaidNet.String(),
			CashPaidOut: r.CashPaidOut.String(), PaidFees: r.PaidFees.String(), FeeIncome: r.FeeIncome.String(),
			InFlight: r.InFlight.String(), Withdrawing: r.Withdrawing.String(), OK: r.OK})
	}
	return c.JSON(http.StatusOK, out)
}
