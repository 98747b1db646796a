package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/docs"
	"github.com/rebate-ledger/rebate/internal/notify"
)

// hookReceiver is a shop's webhook endpoint: it verifies each delivery's signature and records the
// events by id.
type hookReceiver struct {
	*httptest.Server
	secret string
	mu     sync.Mutex
	events []map[string]any
	bad    []string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := notify.Verify(r.secret, req.Header.Get(notify.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
			r.bad = append(r.bad, string(body))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var ev map[string]any
		if err := json.Unmarshal(body, &ev); err != nil || ev["id"] != req.Header.Get(notify.HeaderID) {
			r.bad = append(r.bad, string(body))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.events = append(r.events, ev)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *hookReceiver) byType() map[string][]map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]map[string]any{}
	for _, ev := range r.events {
		out[ev["type"].(string)] = append(out[ev["type"].(string)], ev)
	}
	return out
}

func (r *hookReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// TestWebhooksTellEveryCommittedChangeOnce runs the program with a shop's endpoint subscribed to
// every event type: each committed change is delivered once (by event id), signed; refused
// requests send nothing.
func TestWebhooksTellEveryCommittedChangeOnce(t *testing.T) {
	t.Parallel()
	b := setupWith(t, setupOpts{workers: true})
	rcv := newHookReceiver(t)

	status, hook, _ := b.do(t, "POST", "/v1/webhooks", b.operator,
		fmt.Sprintf(`{"url":%q,"events":%s}`, rcv.URL+"/hooks", mustJSON(t, notify.Types)))
	require.Equal(t, http.StatusCreated, status, hook)
	rcv.mu.Lock()
	rcv.secret = hook["secret"].(string)
	rcv.mu.Unlock()
	id := hook["id"].(string)

	status, read, _ := b.get(t, "/v1/webhooks/"+id, b.auditor)
	require.Equal(t, http.StatusOK, status, read)
	require.NotContains(t, read, "secret", "reads never show the secret")
	status, list, _ := b.get(t, "/v1/webhooks", b.operator)
	require.Equal(t, http.StatusOK, status, list)
	require.Len(t, list["items"], 1)

	// Members: two sign-ups, one refused.
	b.member(t, "root")
	status, m, _ := b.do(t, "POST", "/v1/members", b.shop, `{"id":"kid","referrer_id":"root"}`)
	require.Equal(t, http.StatusCreated, status, m)
	status, _, _ = b.do(t, "POST", "/v1/members", b.shop, `{"id":"kid","referrer_id":"root"}`)
	require.Equal(t, http.StatusCreated, status, "a replay tells nothing new")
	status, _, _ = b.do(t, "POST", "/v1/members", b.shop, `{"id":"x","referrer_id":"nobody"}`)
	require.Equal(t, http.StatusUnprocessableEntity, status)

	// An order and a partial refund in one batch, one refused event; the release job ends the hold.
	status, res, _ := b.do(t, "POST", "/v1/events/batch", b.shop, `{"events":[
		{"id":"e1","type":"order.paid","occurred_at":"2026-11-01T08:00:00Z","data":{"order_id":"o1","member_id":"kid","amount":"100.00","currency":"CNY"}},
		{"id":"e2","type":"order.refunded","occurred_at":"2026-11-02T08:00:00Z","data":{"order_id":"o1","refund_id":"r1","amount":"40.00"}},
		{"id":"e3","type":"order.paid","occurred_at":"2026-11-01T08:00:00Z","data":{"order_id":"o2","member_id":"ghost","amount":"100.00","currency":"CNY"}}]}`)
	require.Equal(t, http.StatusOK, status, res)

	// Withdrawals: one approved at once and paid, one reviewed and rejected, one cancelled.
	b.fund(t, "root", "3000.00")
	status, w := b.withdraw(t, b.shop, "root", "w-paid", "20.00")
	require.Equal(t, http.StatusCreated, status, w)
	status, w = b.withdraw(t, b.shop, "root", "w-big", "2500.00")
	require.Equal(t, "pending_review", w["status"], w)
	status, w, _ = b.do(t, "POST", "/v1/withdrawals/w-big/reject", b.operator, `{"reason":"check the account"}`)
	require.Equal(t, http.StatusOK, status, w)
	status, w = b.withdraw(t, b.shop, "root", "w-cancel", "30.00")
	require.Equal(t, http.StatusCreated, status, w)
	status, w, _ = b.do(t, "POST", "/v1/withdrawals/w-cancel/cancel", b.shop, `{}`)
	require.Equal(t, http.StatusOK, status, w)
	status, w = b.withdraw(t, b.shop, "root", "w-too-much", "999999.00")
	require.NotEqual(t, http.StatusCreated, status, "refused: tells nothing")

	status, cut, _ := b.do(t, "POST", "/v1/payout-batches", b.operator, `{"currency":"CNY"}`)
	require.Equal(t, http.StatusCreated, status, cut)
	batch := cut["batch"].(map[string]any)
	item := batch["items"].([]any)[0].(map[string]any)
	status, res, _ = b.do(t, "POST", "/v1/payout-batches/"+batch["id"].(string)+"/results", b.operator,
		fmt.Sprintf(`{"items":[{"item_id":%v,"status":"paid","reference":"bank-1"}]}`, item["id"]))
	require.Equal(t, http.StatusOK, status, res)

	want := map[string]int{
		notify.MemberRegistered: 2, notify.RebateAccrued: 1, notify.RebateClawedBack: 1, notify.RebateReleased: 1,
		notify.WithdrawalRequested: 3, notify.WithdrawalApproved: 2, notify.WithdrawalRejected: 1,
		notify.WithdrawalCancelled: 1, notify.WithdrawalPaid: 1, notify.PayoutBatchCompleted: 1,
	}
	total := 0
	for _, n := range want {
		total += n
	}
	require.Eventually(t, func() bool { return rcv.count() >= total }, 20*time.Second, 50*time.Millisecond)
	// A few more dispatcher rounds: nothing is sent twice.
	time.Sleep(500 * time.Millisecond)
	got := rcv.byType()
	for typ, n := range want {
		require.Len(t, got[typ], n, typ)
	}
	require.Equal(t, total, rcv.count())
	require.Empty(t, rcv.bad, "every delivery verifies")
	ids := map[any]bool{}
	for _, evs := range got {
		for _, ev := range evs {
			require.False(t, ids[ev["id"]], "event %v delivered twice", ev["id"])
			ids[ev["id"]] = true
		}
	}

	// What the shop is told.
	registered := map[string]any{}
	for _, ev := range got[notify.MemberRegistered] {
		d := ev["data"].(map[string]any)
		registered[d["member_id"].(string)] = d["referrer_id"]
	}
	require.Equal(t, map[string]any{"root": nil, "kid": "root"}, registered, "your friend joined")
	accrued := got[notify.RebateAccrued][0]["data"].(map[string]any)
	require.Equal(t, "o1", accrued["order_id"])
	require.Equal(t, "root", accrued["rebates"].([]any)[0].(map[string]any)["member_id"])
	clawed := got[notify.RebateClawedBack][0]["data"].(map[string]any)
	require.Equal(t, "r1", clawed["refund_id"])
	paid := got[notify.WithdrawalPaid][0]["data"].(map[string]any)
	require.Equal(t, "w-paid", paid["id"])
	require.Equal(t, "bank-1", paid["reference"])
	require.Equal(t, map[string]any{"type": "bank", "account_last4": "5678"}, paid["destination"], "destinations leave masked")
	done := got[notify.PayoutBatchCompleted][0]["data"].(map[string]any)
	require.EqualValues(t, 1, done["paid"])
	require.Equal(t, "19.00", done["paid_net"], "20.00 less the 1.00 minimum fee")

	// The operator's view of the deliveries.
	status, ds, _ := b.get(t, "/v1/webhooks/"+id+"/deliveries?limit=5", b.operator)
	require.Equal(t, http.StatusOK, status, ds)
	require.Len(t, ds["items"], 5)
	first := ds["items"].([]any)[0].(map[string]any)
	require.Equal(t, "delivered", first["status"])
	require.NotEmpty(t, first["event"])
	status, ds2, _ := b.get(t, "/v1/webhooks/"+id+"/deliveries?status=delivered&limit=500&cursor="+ds["next_cursor"].(string), b.auditor)
	require.Equal(t, http.StatusOK, status, ds2)
	require.Len(t, ds2["items"], total-5)

	// Deleted: nothing more is written for it.
	status, _, _ = b.do(t, "DELETE", "/v1/webhooks/"+id, b.operator, "")
	require.Equal(t, http.StatusNoContent, status)
	b.member(t, "late")
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, total, rcv.count())
	status, list, _ = b.get(t, "/v1/webhooks", b.operator)
	require.Equal(t, http.StatusOK, status, list)
	require.Empty(t, list["items"])
}

// TestTheContractListsEveryWebhookEventType: docs/openapi.yaml's WebhookEventType is notify.Types,
// in order, so a shop reading the contract sees every type the service sends.
func TestTheContractListsEveryWebhookEventType(t *testing.T) {
	t.Parallel()
	spec, err := openapi3.NewLoader().LoadFromData(docs.OpenAPI)
	require.NoError(t, err)
	var listed []string
	for _, v := range spec.Components.Schemas["WebhookEventType"].Value.Enum {
		listed = append(listed, v.(string))
	}
	require.Equal(t, notify.Types, listed)
}
