package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/rebate-ledger/rebate/internal/apiclient"
	"github.com/rebate-ledger/rebate/internal/auth"
)

// runDemo walks a withdrawal through its life over the real HTTP API (the generated client, as the
// simulated shop uses it), printing each step: a member invites a friend, the friend's order earns
// the member a rebate (its hold already over), the member asks for a withdrawal large enough to
// need review, an operator approves it, a batch is cut, and the payout provider pays it. Every id is
// fixed, so a second `make run` replays the same story instead of repeating it.
func runDemo(ctx context.Context, base string, keys map[auth.Role]string, simulatedProvider bool, out io.Writer) error {
	shop, err := apiclient.NewBearer(base, keys[auth.Shop], 30*time.Second)
	if err != nil {
		return err
	}
	op, err := apiclient.NewBearer(base, keys[auth.Operator], 30*time.Second)
	if err != nil {
		return err
	}
	say := func(format string, args ...any) { fmt.Fprintf(out, "demo: "+format+"\n", args...) }
	wait := func(what string, done func() (bool, error)) error {
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
			if ok, err := done(); err != nil || ok {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
		return fmt.Errorf("gave up waiting for %s", what)
	}

	say("1. shop registers demo-alice, and demo-bob invited by her")
	alice := "demo-alice"
	m, err := shop.PostMembersWithResponse(ctx, apiclient.PostMembersJSONRequestBody{Id: alice})
	if err := apiclient.Expect("register demo-alice", m, err, http.StatusCreated); err != nil {
		return err
	}
	m, err = shop.PostMembersWithResponse(ctx, apiclient.PostMembersJSONRequestBody{Id: "demo-bob", ReferrerId: &alice})
	if err := apiclient.Expect("register demo-bob", m, err, http.StatusCreated); err != nil {
		return err
	}
	order, err := shop.GetOrdersOneWithResponse(ctx, "demo-order-1")
	if err := apiclient.Expect("read demo-order-1", order, err, http.StatusOK, http.StatusNotFound); err != nil {
		return err
	}
	if order.StatusCode() == http.StatusNotFound {
		// Paid eight days ago: the program's seven-day hold is already over, so the release job runs at once.
		at := time.Now().Add(-8 * 24 * time.Hour).UTC().Truncate(time.Second)
		say("2. demo-bob pays order demo-order-1 of 50000.00 CNY (at %s)", at.Format(time.RFC3339))
		var data apiclient.Event_Data
		if err := data.FromEventData0(apiclient.EventData0{OrderId: "demo-order-1", MemberId: "demo-bob", Amount: "50000.00", Currency: "CNY"}); err != nil {
			return err
		}
		ev, err := shop.PostEventsWithResponse(ctx, apiclient.Event{Id: "demo-event-1", Type: "order.paid", OccurredAt: at, Data: data})
		if err := apiclient.Expect("post demo-event-1", ev, err, http.StatusCreated); err != nil {
			return err
		}
	}
	var available string
	if err := wait("the hold release", func() (bool, error) {
		b, err := shop.GetMembersBalancesWithResponse(ctx, alice)
		if err := apiclient.Expect("read demo-alice's balances", b, err, http.StatusOK); err != nil {
			return false, err
		}
		for _, c := range b.JSON200.Balances {
			if c.Currency == "CNY" {
				available = c.Available
				return c.Held == "0.00", nil
			}
		}
		return false, nil
	}); err != nil {
		return err
	}
	say("3. the hold is over: demo-alice has %s CNY available", available)
	w, err := shop.PostMembersWithdrawalsWithResponse(ctx, alice, apiclient.PostMembersWithdrawalsJSONRequestBody{
		Id: "demo-withdrawal-1", Amount: "2100.00", Currency: "CNY",
		Destination: apiclient.Destination{Type: "alipay", Account: "alice@example.com", Name: "Alice"}})
	if err := apiclient.Expect("request demo-withdrawal-1", w, err, http.StatusCreated); err != nil {
		return err
	}
	say("4. demo-alice asks to withdraw %s CNY (fee %s, net %s): %s", w.JSON201.Amount, w.JSON201.Fee, w.JSON201.Net, w.JSON201.Status)
	reason := "demo"
	ap, err := op.PostWithdrawalsApproveWithResponse(ctx, "demo-withdrawal-1", apiclient.PostWithdrawalsApproveJSONRequestBody{Reason: &reason})
	// A second run finds it approved (or paid) already: 409, and the story goes on.
	if err := apiclient.Expect("approve demo-withdrawal-1", ap, err, http.StatusOK, http.StatusConflict); err != nil {
		return err
	}
	status := "approved before (409)"
	if ap.JSON200 != nil {
		status = string(ap.JSON200.Status)
	}
	say("5. an operator approves it: %s", status)
	id := "demo-batch-1"
	cut, err := op.PostPayoutBatchesWithResponse(ctx, apiclient.PostPayoutBatchesJSONRequestBody{Id: &id, Currency: "CNY"})
	if err := apiclient.Expect("cut demo-batch-1", cut, err, http.StatusOK, http.StatusCreated); err != nil {
		return err
	}
	if cut.JSON201 == nil || cut.JSON201.Batch == nil {
		return fmt.Errorf("no batch was cut: %s", cut.Body)
	}
	batch := cut.JSON201.Batch
	say("6. a payout batch is cut: %s with %d item(s), provider %s", batch.Id, batch.ItemCount, batch.Provider)
	if !simulatedProvider {
		say("7. the csv provider waits for the bank: GET /v1/payout-batches/%s?format=csv, then POST its results", batch.Id)
		return nil
	}
	var paid *apiclient.Withdrawal
	if err := wait("the simulated payout", func() (bool, error) {
		g, err := op.GetWithdrawalsOneWithResponse(ctx, "demo-withdrawal-1")
		if err := apiclient.Expect("read demo-withdrawal-1", g, err, http.StatusOK); err != nil {
			return false, err
		}
		paid = g.JSON200
		return paid.Status == "paid" || paid.Status == "failed", nil
	}); err != nil {
		return err
	}
	say("7. the SIMULATED provider reports the payout: withdrawal %s is %s", paid.Id, paid.Status)
	b, err := shop.GetMembersBalancesWithResponse(ctx, alice)
	if err := apiclient.Expect("read demo-alice's balances", b, err, http.StatusOK); err != nil {
		return err
	}
	for _, c := range b.JSON200.Balances {
		say("8. demo-alice's %s now: available %s, held %s, withdrawing %s, paid out %s", c.Currency, c.Available, c.Held, c.Withdrawing, c.PaidOut)
	}
	return nil
}
