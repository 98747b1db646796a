package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/rebate-ledger/rebate/internal/auth"
)

// runDemo walks a withdrawal through its life over the real HTTP API, printing each step: a member
// invites a friend, the friend's order earns the member a rebate (its hold already over), the
// member asks for a withdrawal large enough to need review, an operator approves it, a batch is
// cut, and the payout provider pays it. Every id is fixed, so a second `make run` replays the
// same story instead of repeating it.
func runDemo(ctx context.Context, base string, keys map[auth.Role]string, simulatedProvider bool, out io.Writer) error {
	shop, operator := keys[auth.Shop], keys[auth.Operator]
	call := func(method, path, key, body string) (int, map[string]any, error) {
		req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewBufferString(body))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m, nil
	}
	say := func(format string, args ...any) { fmt.Fprintf(out, "demo: "+format+"\n", args...) }
	must := func(method, path, key, body string, want ...int) (map[string]any, error) {
		status, m, err := call(method, path, key, body)
		if err != nil {
			return nil, err
		}
		for _, w := range want {
			if status == w {
				return m, nil
			}
		}
		return nil, fmt.Errorf("unexpected answer %d: %v", status, m)
	}
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
	if _, err := must("POST", "/v1/members", shop, `{"id":"demo-alice"}`, 201); err != nil {
		return err
	}
	if _, err := must("POST", "/v1/members", shop, `{"id":"demo-bob","referrer_id":"demo-alice"}`, 201); err != nil {
		return err
	}
	if status, _, err := call("GET", "/v1/orders/demo-order-1", shop, ""); err != nil {
		return err
	} else if status == http.StatusNotFound {
		// Paid eight days ago: the program's seven-day hold is already over, so the release job runs at once.
		at := time.Now().Add(-8 * 24 * time.Hour).UTC().Format(time.RFC3339)
		say("2. demo-bob pays order demo-order-1 of 50000.00 CNY (at %s)", at)
		if _, err := must("POST", "/v1/events", shop, `{"id":"demo-event-1","type":"order.paid","occurred_at":"`+at+
			`","data":{"order_id":"demo-order-1","member_id":"demo-bob","amount":"50000.00","currency":"CNY"}}`, 201); err != nil {
			return err
		}
	}
	var available string
	if err := wait("the hold release", func() (bool, error) {
		m, err := must("GET", "/v1/members/demo-alice/balances", shop, "", 200)
		if err != nil {
			return false, err
		}
		for _, b := range m["balances"].([]any) {
			if b := b.(map[string]any); b["currency"] == "CNY" {
				available = fmt.Sprint(b["available"])
				return b["held"] == "0.00", nil
			}
		}
		return false, nil
	}); err != nil {
		return err
	}
	say("3. the hold is over: demo-alice has %s CNY available", available)
	w, err := must("POST", "/v1/members/demo-alice/withdrawals", shop,
		`{"id":"demo-withdrawal-1","amount":"2100.00","currency":"CNY","destination":{"type":"alipay","account":"alice@example.com","name":"Alice"}}`, 201)
	if err != nil {
		return err
	}
	say("4. demo-alice asks to withdraw %s CNY (fee %s, net %s): %s", w["amount"], w["fee"], w["net"], w["status"])
	if w, err = must("POST", "/v1/withdrawals/demo-withdrawal-1/approve", operator, `{"reason":"demo"}`, 200, 409); err != nil {
		return err
	}
	say("5. an operator approves it: %v", w["status"])
	b, err := must("POST", "/v1/payout-batches", operator, `{"id":"demo-batch-1","currency":"CNY"}`, 200, 201)
	if err != nil {
		return err
	}
	batch, _ := b["batch"].(map[string]any)
	if batch == nil {
		return fmt.Errorf("no batch was cut: %v", b)
	}
	say("6. a payout batch is cut: %s with %v item(s), provider %s", batch["id"], batch["item_count"], batch["provider"])
	if !simulatedProvider {
		say("7. the csv provider waits for the bank: GET /v1/payout-batches/%s?format=csv, then POST its results", batch["id"])
		return nil
	}
	if err := wait("the simulated payout", func() (bool, error) {
		m, err := must("GET", "/v1/withdrawals/demo-withdrawal-1", operator, "", 200)
		if err != nil {
			return false, err
		}
		w = m
		return m["status"] == "paid" || m["status"] == "failed", nil
	}); err != nil {
		return err
	}
	say("7. the SIMULATED provider reports the payout: withdrawal %s is %s", w["id"], w["status"])
	m, err := must("GET", "/v1/members/demo-alice/balances", shop, "", 200)
	if err != nil {
		return err
	}
	say("8. demo-alice's balances now: %v", m["balances"])
	return nil
}
