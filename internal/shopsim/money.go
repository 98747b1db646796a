package shopsim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/apiclient"
)

// balances reads a member's balances in currency c.
func (s *sim) balances(ctx context.Context, member string, c apiclient.Currency) (available, held decimal.Decimal, err error) {
	resp, err := s.shop.GetMembersBalancesWithResponse(ctx, member)
	if err := apiclient.Expect("GET /v1/members/{id}/balances", resp, err, 200); err != nil {
		return available, held, err
	}
	for _, b := range resp.JSON200.Balances {
		if b.Currency == c {
			return decimal.RequireFromString(b.Available), decimal.RequireFromString(b.Held), nil
		}
	}
	return decimal.Zero, decimal.Zero, nil
}

// waitFor polls until done or the timeout.
func waitFor(ctx context.Context, timeout time.Duration, what string, done func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up waiting %s for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// redeem spends points for a fifth of the members who have some.
func (s *sim) redeem(ctx context.Context) error {
	bar := s.bar(len(s.members), "points")
	return parallel(ctx, 8, len(s.members), func(i int) error {
		defer bar.Add(1) //nolint:errcheck
		if i%5 != 0 {
			return nil
		}
		pts, _, err := s.balances(ctx, s.members[i], "PTS")
		if err != nil || pts.LessThan(decimal.NewFromInt(20)) {
			return err
		}
		reason := "coupon"
		resp, err := s.shop.PostMembersPointsRedemptionsWithResponse(ctx, s.members[i], apiclient.PostMembersPointsRedemptionsJSONRequestBody{
			Id: s.members[i] + "-redeem", Points: int(pts.IntPart() / 2), Reason: &reason})
		if err := apiclient.Expect("POST /v1/members/{id}/points/redemptions", resp, err, 201); err != nil {
			return err
		}
		s.count(&s.sum.Redemptions)
		return nil
	})
}

func (s *sim) count(n *int) {
	s.mu.Lock()
	*n++
	s.mu.Unlock()
}

// withdraw asks, for four in ten members with enough available money, for part of it: half of them
// through a member token (the member's own app), the others through the shop. Some ask for more than
// the review threshold.
func (s *sim) withdraw(ctx context.Context) error {
	// The service releases orders past their hold at once (River's release jobs): wait until the
	// last of them, in business time, is released.
	if n := len(s.released); n > 0 {
		for _, order := range []string{s.released[0], s.released[n/2], s.released[n-1]} {
			err := waitFor(ctx, 2*time.Minute, "the release of "+order, func() (bool, error) {
				resp, err := s.shop.GetOrdersOneWithResponse(ctx, order)
				if err := apiclient.Expect("GET /v1/orders/{order_id}", resp, err, 200); err != nil {
					return false, err
				}
				return resp.JSON200.ReleasedAt != nil, nil
			})
			if err != nil {
				return err
			}
		}
	}
	bar := s.bar(len(s.members), "withdrawals")
	return parallel(ctx, 8, len(s.members), func(i int) error {
		defer bar.Add(1) //nolint:errcheck
		m := s.members[i]
		avail, _, err := s.balances(ctx, m, s.currency)
		if err != nil || avail.LessThan(s.min.Mul(decimal.NewFromInt(2))) {
			return err
		}
		var amount decimal.Decimal
		switch {
		case avail.GreaterThan(s.reviewAbove.Add(s.min)):
			// The big earners take most of it out, above the review threshold (up to the maximum).
			amount = decimal.Min(avail.Mul(decimal.NewFromFloat(0.9)), s.max).RoundDown(2)
		case i%5 < 2:
			amount = s.min.Add(avail.Sub(s.min).Mul(decimal.NewFromFloat(0.3 + 0.6*s.float()))).RoundDown(2)
		default:
			return nil
		}
		account := fmt.Sprintf("6222%012d", i)
		req := apiclient.PostMembersWithdrawalsJSONRequestBody{Id: m + "-w1", Amount: amount.StringFixed(2), Currency: s.currency,
			Destination: apiclient.Destination{Type: "bank", Account: account, Name: "Member " + m}}
		as := s.shop
		if i%2 == 0 {
			tok, err := s.shop.PostMembersTokensWithResponse(ctx, m, apiclient.PostMembersTokensJSONRequestBody{})
			if err := apiclient.Expect("POST /v1/members/{id}/tokens", tok, err, 201); err != nil {
				return err
			}
			if as, err = apiclient.NewBearer(s.cfg.URL, *tok.JSON201.Token, 60*time.Second); err != nil {
				return err
			}
		}
		resp, err := as.PostMembersWithdrawalsWithResponse(ctx, m, req)
		if err := apiclient.Expect("POST /v1/members/{id}/withdrawals", resp, err, 201, 422); err != nil {
			return err
		}
		if resp.StatusCode() == 201 {
			s.count(&s.sum.Withdrawals)
		}
		return nil
	})
}

func (s *sim) float() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r.Float64()
}

// review approves two in three of the withdrawals waiting for review and rejects the rest.
func (s *sim) review(ctx context.Context) error {
	status := apiclient.GetWithdrawalsParamsStatus("pending_review")
	limit := 500
	var cursor *string
	var pending []apiclient.Withdrawal
	for {
		resp, err := s.op.GetWithdrawalsWithResponse(ctx, &apiclient.GetWithdrawalsParams{Status: &status, Limit: &limit, Cursor: cursor})
		if err := apiclient.Expect("GET /v1/withdrawals", resp, err, 200); err != nil {
			return err
		}
		if resp.JSON200.Items != nil {
			for _, w := range *resp.JSON200.Items {
				if len(w.Id) > len(s.run) && w.Id[:len(s.run)] == s.run {
					pending = append(pending, w)
				}
			}
		}
		if resp.JSON200.NextCursor == nil || *resp.JSON200.NextCursor == "" {
			break
		}
		cursor = resp.JSON200.NextCursor
	}
	for i, w := range pending {
		if i%3 == 2 {
			reason := "the account name does not match the member"
			resp, err := s.op.PostWithdrawalsRejectWithResponse(ctx, w.Id, apiclient.PostWithdrawalsRejectJSONRequestBody{Reason: &reason})
			if err := apiclient.Expect("POST /v1/withdrawals/{id}/reject", resp, err, 200); err != nil {
				return err
			}
			s.sum.Rejected++
			continue
		}
		reason := "checked"
		resp, err := s.op.PostWithdrawalsApproveWithResponse(ctx, w.Id, apiclient.PostWithdrawalsApproveJSONRequestBody{Reason: &reason})
		if err := apiclient.Expect("POST /v1/withdrawals/{id}/approve", resp, err, 200); err != nil {
			return err
		}
		s.sum.Approved++
	}
	return nil
}

// payout cuts a batch of the approved withdrawals. The SIMULATED provider reports its results by
// itself; with the CSV bank file, the demo plays the bank and posts every item as paid.
func (s *sim) payout(ctx context.Context) error {
	id := s.run + "-batch"
	resp, err := s.op.PostPayoutBatchesWithResponse(ctx, apiclient.PostPayoutBatchesJSONRequestBody{Currency: s.currency, Id: &id})
	if err := apiclient.Expect("POST /v1/payout-batches", resp, err, 200, 201); err != nil {
		return err
	}
	if resp.StatusCode() == 200 || resp.JSON201 == nil || resp.JSON201.Batch == nil {
		return nil // nothing approved to pay
	}
	batch := resp.JSON201.Batch
	s.sum.BatchID = batch.Id
	if batch.Provider == "csv" {
		body := apiclient.PostPayoutBatchesResultsJSONRequestBody{}
		for _, it := range batch.Items {
			ref := fmt.Sprintf("demo-bank-%d", it.Id)
			body.Items = append(body.Items, struct {
				ItemId    int                                                   `json:"item_id"`
				Reason    *string                                               `json:"reason,omitempty"`
				Reference *string                                               `json:"reference,omitempty"`
				Status    apiclient.PostPayoutBatchesResultsJSONBodyItemsStatus `json:"status"`
			}{ItemId: it.Id, Reference: &ref, Status: "paid"})
		}
		res, err := s.op.PostPayoutBatchesResultsWithResponse(ctx, batch.Id, body)
		if err := apiclient.Expect("POST /v1/payout-batches/{id}/results", res, err, 200); err != nil {
			return err
		}
	}
	return waitFor(ctx, 2*time.Minute, "the payout batch's results", func() (bool, error) {
		b, err := s.op.GetPayoutBatchesOneWithResponse(ctx, batch.Id, nil)
		if err := apiclient.Expect("GET /v1/payout-batches/{id}", b, err, 200); err != nil {
			return false, err
		}
		if b.JSON200.Status != "completed" {
			return false, nil
		}
		s.sum.Paid, s.sum.PaidNet = 0, decimal.Zero
		for _, it := range b.JSON200.Items {
			if it.Status == "paid" {
				s.sum.Paid++
				s.sum.PaidNet = s.sum.PaidNet.Add(decimal.RequireFromString(it.Net))
			}
		}
		return true, nil
	})
}

// award waits for the service to award the campaign (its job runs at ends_at).
func (s *sim) award(ctx context.Context) error {
	return waitFor(ctx, s.cfg.CampaignFor+time.Minute, "the campaign's award", func() (bool, error) {
		resp, err := s.auditor.GetCampaignsOneWithResponse(ctx, s.sum.CampaignID)
		if err := apiclient.Expect("GET /v1/campaigns/{id}", resp, err, 200); err != nil {
			return false, err
		}
		if resp.JSON200.Status != "awarded" {
			return false, nil
		}
		for _, w := range resp.JSON200.Winners {
			s.sum.CampaignWinners = append(s.sum.CampaignWinners, fmt.Sprintf("#%d %s (%s invited) %s %s", w.Rank, w.MemberId, w.Figure, w.Amount, s.currency))
		}
		return true, nil
	})
}

// reports reads the program's cost and the continuous checker's latest run.
func (s *sim) reports(ctx context.Context) error {
	inc, err := s.auditor.GetReportsIncomeStatementWithResponse(ctx, &apiclient.GetReportsIncomeStatementParams{Currency: &s.currency})
	if err := apiclient.Expect("GET /v1/reports/income-statement", inc, err, 200); err != nil {
		return err
	}
	if inc.JSON200.Currencies != nil {
		for _, c := range *inc.JSON200.Currencies {
			if c.Currency != nil && *c.Currency == s.currency && c.RebatesGranted != nil && c.ClawedBack != nil {
				s.sum.RewardsGranted, s.sum.RewardsClawed = *c.RebatesGranted, *c.ClawedBack
			}
		}
	}
	limit := 1
	return waitFor(ctx, 30*time.Second, "a run of the continuous checker", func() (bool, error) {
		chk, err := s.auditor.GetReportsChecksWithResponse(ctx, &apiclient.GetReportsChecksParams{Limit: &limit})
		if err := apiclient.Expect("GET /v1/reports/checks", chk, err, 200); err != nil {
			return false, err
		}
		if chk.JSON200.Items == nil || len(*chk.JSON200.Items) == 0 {
			return false, nil
		}
		last := (*chk.JSON200.Items)[0]
		if last.Status == nil || last.ToSeq == nil {
			return false, errors.New("a check without status")
		}
		s.sum.CheckerStatus, s.sum.CheckerCheckedTo = string(*last.Status), *last.ToSeq
		return true, nil
	})
}
