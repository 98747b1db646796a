package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/clock"
	"github.com/rebate-ledger/rebate/internal/notify"
	"github.com/rebate-ledger/rebate/internal/pgtest"
	"github.com/rebate-ledger/rebate/internal/store"
)

// receiver is a real local HTTP endpoint that records what it is sent and answers with what the
// test tells it to.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	got      []received
	answer   func(n int) int // status for the n-th request (1-based)
	hang     chan struct{}   // when set, requests wait on it
	requests int
}

type received struct {
	id, timestamp, signature string
	body                     []byte
}

func newReceiver(t *testing.T, answer func(n int) int) *receiver {
	r := &receiver{answer: answer}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.requests++
		n := r.requests
		hang := r.hang
		r.got = append(r.got, received{req.Header.Get(notify.HeaderID), req.Header.Get(notify.HeaderTimestamp),
			req.Header.Get(notify.HeaderSignature), b})
		r.mu.Unlock()
		if hang != nil {
			select {
			case <-hang:
			case <-req.Context().Done():
			}
		}
		w.WriteHeader(r.answer(n))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func ok(int) int { return http.StatusOK }

type bundle struct {
	pool  *pgxpool.Pool
	hooks *notify.Webhooks
	clock *clock.Manual
}

func setup(t *testing.T) bundle {
	t.Helper()
	pool := pgtest.New(t)
	c := clock.NewManual(time.Now())
	return bundle{pool: pool, hooks: notify.NewWebhooks(pool, c, true), clock: c}
}

// dispatcher is a dispatcher allowed to send to the tests' loopback receivers.
func (b bundle) dispatcher(opts notify.Options) *notify.Dispatcher {
	opts.Clock, opts.AllowLocal = b.clock, true
	if opts.FirstRetry == 0 {
		opts.FirstRetry = time.Minute
	}
	return notify.NewDispatcher(b.pool, opts)
}

func (b bundle) register(t *testing.T, url string, events ...string) notify.Endpoint {
	t.Helper()
	ep, _, err := b.hooks.Register(context.Background(), notify.Registration{URL: url, Events: events})
	require.NoError(t, err)
	return ep
}

// write commits (or, with rollback, rolls back) notes in a transaction of their own.
func (b bundle) write(t *testing.T, rollback bool, notes ...notify.Note) {
	t.Helper()
	errRollback := errors.New("rolled back on purpose")
	err := store.WithTx(context.Background(), b.pool, func(tx pgx.Tx) error {
		if err := notify.Write(context.Background(), tx, notes...); err != nil {
			return err
		}
		if rollback {
			return errRollback
		}
		return nil
	})
	if rollback {
		require.ErrorIs(t, err, errRollback)
	} else {
		require.NoError(t, err)
	}
}

func (b bundle) deliveries(t *testing.T, endpoint string) []notify.Delivery {
	t.Helper()
	ds, _, err := b.hooks.Deliveries(context.Background(), endpoint, "", "", 500)
	require.NoError(t, err)
	return ds
}

func countRows(t *testing.T, pool *pgxpool.Pool) int {
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_deliveries`).Scan(&n))
	return n
}

func TestOutbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("NothingIsWrittenWithoutASubscriber", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.write(t, false, notify.Note{Type: notify.RebateAccrued, Data: map[string]string{"order_id": "o1"}})
		b.register(t, "http://127.0.0.1:1/hook", notify.WithdrawalPaid)
		b.write(t, false, notify.Note{Type: notify.RebateAccrued, Data: map[string]string{"order_id": "o2"}})
		require.Equal(t, 0, countRows(t, b.pool))
	})

	t.Run("OneDeliveryPerCommittedNoteAndSubscriber_NoneForARollback", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a := b.register(t, "http://127.0.0.1:1/a", notify.RebateAccrued, notify.RebateReleased)
		c := b.register(t, "http://127.0.0.1:1/c", notify.RebateAccrued)
		b.write(t, false, notify.Note{Type: notify.RebateAccrued, Data: 1}, notify.Note{Type: notify.RebateReleased, Data: 2},
			notify.Note{Type: notify.PointsExpired, Data: 3})
		b.write(t, true, notify.Note{Type: notify.RebateAccrued, Data: 4})
		da, dc := b.deliveries(t, a.ID), b.deliveries(t, c.ID)
		require.Len(t, da, 2)
		require.Len(t, dc, 1)
		// One event, one id, whoever it is sent to.
		byType := map[string]string{}
		for _, d := range da {
			byType[d.EventType] = d.EventID
			require.Equal(t, "pending", d.Status)
		}
		require.Equal(t, byType[notify.RebateAccrued], dc[0].EventID)
		require.NotEqual(t, byType[notify.RebateAccrued], byType[notify.RebateReleased])
	})

	t.Run("AnUnknownTypeIsRefusedAndWritesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.register(t, "http://127.0.0.1:1/a", notify.RebateAccrued)
		err := store.WithTx(ctx, b.pool, func(tx pgx.Tx) error {
			return notify.Write(ctx, tx, notify.Note{Type: notify.RebateAccrued, Data: 1}, notify.Note{Type: "rebate.invented", Data: 2})
		})
		require.ErrorContains(t, err, "unknown event type")
		require.Equal(t, 0, countRows(t, b.pool))
	})

	t.Run("ADeletedEndpointGetsNothingNewAndItsPendingAreCancelled", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a := b.register(t, "http://127.0.0.1:1/a", notify.RebateAccrued)
		b.write(t, false, notify.Note{Type: notify.RebateAccrued, Data: 1})
		require.NoError(t, b.hooks.Delete(ctx, a.ID))
		require.NoError(t, b.hooks.Delete(ctx, a.ID), "deleting again is a no-op")
		b.write(t, false, notify.Note{Type: notify.RebateAccrued, Data: 2})
		ds := b.deliveries(t, a.ID)
		require.Len(t, ds, 1)
		require.Equal(t, "cancelled", ds[0].Status)
		_, err := b.hooks.Get(ctx, a.ID)
		require.NoError(t, err, "a deleted endpoint stays readable")
		require.True(t, apperr.Is(b.hooks.Delete(ctx, "wh_unknown"), apperr.NotFound))
	})

	t.Run("EndpointsAndPendingDeliveriesAreNeverDeleted", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.register(t, "http://127.0.0.1:1/a", notify.RebateAccrued)
		b.write(t, false, notify.Note{Type: notify.RebateAccrued, Data: 1})
		for _, sql := range []string{`DELETE FROM webhook_endpoints`, `TRUNCATE webhook_endpoints CASCADE`, `TRUNCATE webhook_deliveries`} {
			_, err := b.pool.Exec(ctx, sql)
			require.ErrorContains(t, err, "never deleted", sql)
		}
		_, err := b.pool.Exec(ctx, `DELETE FROM webhook_deliveries`)
		require.ErrorContains(t, err, "a pending webhook delivery is never deleted")
		require.Equal(t, 1, countRows(t, b.pool))
	})

	t.Run("PruneDeletesOnlySettledDeliveriesPastTheRetention", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rcv := newReceiver(t, ok)
		ep := b.register(t, rcv.URL, notify.RebateAccrued)
		for range 3 {
			b.write(t, false, notify.Note{Type: notify.RebateAccrued, Data: 1})
		}
		_, err := b.dispatcher(notify.Options{}).Run(ctx)
		require.NoError(t, err)
		b.write(t, false, notify.Note{Type: notify.RebateAccrued, Data: 2}) // still pending
		// Two delivered ones and the pending one are 40 days old.
		_, err = b.pool.Exec(ctx, `UPDATE webhook_deliveries SET created_at = created_at - interval '40 days'
			WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'delivered' ORDER BY id LIMIT 2) OR status = 'pending'`)
		require.NoError(t, err)
		n, err := notify.Prune(ctx, b.pool, time.Now(), 30*24*time.Hour)
		require.NoError(t, err)
		require.EqualValues(t, 2, n)
		ds := b.deliveries(t, ep.ID)
		require.Len(t, ds, 2)
		statuses := []string{ds[0].Status, ds[1].Status}
		require.ElementsMatch(t, []string{"pending", "delivered"}, statuses)
	})
}

func TestDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("DeliveredOnceSignedWithAStableEventID", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rcv := newReceiver(t, ok)
		ep := b.register(t, rcv.URL+"/hook", notify.RebateAccrued)
		secret := mustSecret(t, ep)
		b.write(t, false, notify.Note{Type: notify.RebateAccrued, Data: map[string]string{"order_id": "o1"}})
		d := b.dispatcher(notify.Options{})
		n, err := d.Run(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		n, err = d.Run(ctx)
		require.NoError(t, err)
		require.Equal(t, 0, n, "a delivered event is not sent again")

		got := rcv.received()
		require.Len(t, got, 1)
		require.NoError(t, notify.Verify(secret, got[0].signature, got[0].body, time.Now(), 5*time.Minute))
		require.ErrorIs(t, notify.Verify("whsec_another-secret-entirely", got[0].signature, got[0].body, time.Now(), 5*time.Minute), notify.ErrBadSignature)
		tampered := append([]byte(nil), got[0].body...)
		tampered[len(tampered)-3] ^= 1
		require.ErrorIs(t, notify.Verify(secret, got[0].signature, tampered, time.Now(), 5*time.Minute), notify.ErrBadSignature)
		require.ErrorIs(t, notify.Verify(secret, got[0].signature, got[0].body, time.Now().Add(time.Hour), 5*time.Minute), notify.ErrBadSignature,
			"an old signature is refused")

		var ev struct {
			ID, Type  string
			CreatedAt time.Time `json:"created_at"`
			Data      map[string]string
		}
		require.NoError(t, json.Unmarshal(got[0].body, &ev))
		require.Equal(t, got[0].id, ev.ID)
		require.Equal(t, notify.RebateAccrued, ev.Type)
		require.Equal(t, "o1", ev.Data["order_id"])
		ds := b.deliveries(t, ep.ID)
		require.Equal(t, "delivered", ds[0].Status)
		require.Equal(t, ev.ID, ds[0].EventID)
		require.Equal(t, int32(1), ds[0].Attempts)
	})

	t.Run("NoClaimOutlivesARun", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rcv := newReceiver(t, func(n int) int {
			if n%2 == 0 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		})
		b.register(t, rcv.URL, notify.RebateAccrued)
		for range 7 {
			b.write(t, false, notify.Note{Type: notify.RebateAccrued, Data: 1})
		}
		n, err := b.dispatcher(notify.Options{Batch: 2}).Run(ctx)
		require.NoError(t, err)
		require.Equal(t, 7, n, "rounds of two until the last round is short")
		var held int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::oid
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
			uint32(0x77656268)).Scan(&held))
		require.Zero(t, held, "every claim was released")
	})

	t.Run("RetriedAfter500sWithBackoffThenDelivered_SameIDAndBody", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rcv := newReceiver(t, func(n int) int {
			if n <= 2 {
				return http.StatusInternalServerError
			}
			return http.StatusNoContent
		})
		ep := b.register(t, rcv.URL, notify.WithdrawalPaid)
		b.write(t, false, notify.Note{Type: notify.WithdrawalPaid, Data: map[string]string{"id": "w1"}})
		d := b.dispatcher(notify.Options{FirstRetry: time.Minute})

		run := func() int {
			n, err := d.Run(ctx)
			require.NoError(t, err)
			return n
		}
		require.Equal(t, 1, run())
		ds := b.deliveries(t, ep.ID)
		require.Equal(t, "pending", ds[0].Status)
		require.Equal(t, int32(500), *ds[0].LastStatus)
		require.Equal(t, b.clock.Now().Add(time.Minute), *ds[0].NextAttemptAt, "first retry after FirstRetry")
		require.Equal(t, 0, run(), "not due yet")

		b.clock.Advance(time.Minute)
		require.Equal(t, 1, run())
		ds = b.deliveries(t, ep.ID)
		require.Equal(t, b.clock.Now().Add(2*time.Minute), *ds[0].NextAttemptAt, "the wait doubles")

		b.clock.Advance(2 * time.Minute)
		require.Equal(t, 1, run())
		ds = b.deliveries(t, ep.ID)
		require.Equal(t, "delivered", ds[0].Status)
		require.Equal(t, int32(3), ds[0].Attempts)

		got := rcv.received()
		require.Len(t, got, 3)
		for _, g := range got[1:] {
			require.Equal(t, got[0].id, g.id, "the event id is stable across attempts")
			require.Equal(t, got[0].body, g.body, "the body is the same bytes on every attempt")
		}
	})

	t.Run("ATimeoutIsAFailedAttempt", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rcv := newReceiver(t, ok)
		rcv.hang = make(chan struct{})
		t.Cleanup(func() { close(rcv.hang) })
		ep := b.register(t, rcv.URL, notify.RebateAccrued)
		b.write(t, false, notify.Note{Type: notify.RebateAccrued, Data: 1})
		_, err := b.dispatcher(notify.Options{Timeout: 200 * time.Millisecond}).Run(ctx)
		require.NoError(t, err)
		ds := b.deliveries(t, ep.ID)
		require.Equal(t, "pending", ds[0].Status)
		require.Contains(t, ds[0].LastError, "Timeout")
		require.Nil(t, ds[0].LastStatus)
	})

	t.Run("DeadAfterADayOfFailures", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rcv := newReceiver(t, func(int) int { return http.StatusServiceUnavailable })
		ep := b.register(t, rcv.URL, notify.RebateAccrued)
		b.write(t, false, notify.Note{Type: notify.RebateAccrued, Data: 1})
		d := b.dispatcher(notify.Options{FirstRetry: 10 * time.Second, MaxRetry: time.Hour, GiveUpAfter: 24 * time.Hour})
		attempts := 0
		for range 100 {
			n, err := d.Run(ctx)
			require.NoError(t, err)
			attempts += n
			ds := b.deliveries(t, ep.ID)
			if ds[0].Status == "dead" {
				break
			}
			b.clock.Set(*ds[0].NextAttemptAt)
		}
		ds := b.deliveries(t, ep.ID)
		require.Equal(t, "dead", ds[0].Status)
		// 10 s doubling to the hour cap: 10 attempts reach 2,560 s (about 1.4 h in all), then one an
		// hour until the next would fall after the first day.
		require.Equal(t, attempts, int(ds[0].Attempts))
		require.Equal(t, 32, attempts)
		require.WithinDuration(t, ds[0].CreatedAt.Add(24*time.Hour), b.clock.Now(), time.Hour)
		n, err := d.Run(ctx)
		require.NoError(t, err)
		require.Equal(t, 0, n, "a dead delivery is not tried again")
	})

	t.Run("RedirectsAreNotFollowed", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		target := newReceiver(t, ok)
		redirect := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
		t.Cleanup(redirect.Close)
		ep := b.register(t, redirect.URL, notify.RebateAccrued)
		b.write(t, false, notify.Note{Type: notify.RebateAccrued, Data: 1})
		_, err := b.dispatcher(notify.Options{}).Run(ctx)
		require.NoError(t, err)
		require.Empty(t, target.received())
		ds := b.deliveries(t, ep.ID)
		require.Equal(t, "pending", ds[0].Status)
		require.Contains(t, ds[0].LastError, "redirects are not followed")
	})

	t.Run("LocalAddressesAreRefusedAtConnectUnlessAllowed", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rcv := newReceiver(t, ok)
		// Registered while local addresses were allowed (or through a name that now resolves to
		// loopback): the sender refuses when it connects.
		ep := b.register(t, rcv.URL, notify.RebateAccrued)
		b.write(t, false, notify.Note{Type: notify.RebateAccrued, Data: 1})
		_, err := notify.NewDispatcher(b.pool, notify.Options{Clock: b.clock, AllowLocal: false}).Run(ctx)
		require.NoError(t, err)
		require.Empty(t, rcv.received())
		ds := b.deliveries(t, ep.ID)
		require.Contains(t, ds[0].LastError, "refused: the address is loopback, private or link-local")

		b.clock.Advance(time.Hour)
		_, err = b.dispatcher(notify.Options{}).Run(ctx)
		require.NoError(t, err)
		require.Len(t, rcv.received(), 1)
	})

	t.Run("AnUnreachableEndpointDoesNotHoldUpOthers", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		slow := newReceiver(t, ok)
		slow.hang = make(chan struct{})
		t.Cleanup(func() { close(slow.hang) })
		fast := newReceiver(t, ok)
		s := b.register(t, slow.URL, notify.RebateAccrued)
		b.register(t, fast.URL, notify.RebateAccrued)
		for range 5 {
			b.write(t, false, notify.Note{Type: notify.RebateAccrued, Data: 1})
		}
		_, err := b.dispatcher(notify.Options{Timeout: 300 * time.Millisecond}).Run(ctx)
		require.NoError(t, err)
		require.Len(t, fast.received(), 5)
		// Five deliveries in four lanes: each lane's first attempt times out, and the fifth (second
		// in its lane) waits for its retry untried.
		require.Len(t, slow.received(), 4, "after a timeout, the rest of the lane waits for its retry")
		for _, d := range b.deliveries(t, s.ID) {
			require.Equal(t, "pending", d.Status)
		}
	})
}

// TestADeadEndpointDoesNotSlowTheWritePath: with a delivery hanging in flight (the dispatcher is
// blocked on it), the changes that write notes commit at once: the write path only inserts rows.
func TestADeadEndpointDoesNotSlowTheWritePath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	rcv := newReceiver(t, ok)
	rcv.hang = make(chan struct{})
	ep := b.register(t, rcv.URL, notify.RebateAccrued)
	b.write(t, false, notify.Note{Type: notify.RebateAccrued, Data: 0})
	done := make(chan error, 1)
	go func() {
		_, err := b.dispatcher(notify.Options{Timeout: time.Minute}).Run(ctx)
		done <- err
	}()
	require.Eventually(t, func() bool { return len(rcv.received()) == 1 }, 10*time.Second, 10*time.Millisecond)
	// The attempt hangs for up to a minute; these writes must not wait for it.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for i := range 20 {
		err := store.WithTx(wctx, b.pool, func(tx pgx.Tx) error {
			return notify.Write(wctx, tx, notify.Note{Type: notify.RebateAccrued, Data: i + 1})
		})
		require.NoError(t, err)
	}
	require.Len(t, b.deliveries(t, ep.ID), 21)
	close(rcv.hang)
	require.NoError(t, <-done)
}

func mustSecret(t *testing.T, ep notify.Endpoint) string {
	t.Helper()
	require.NotEmpty(t, ep.Secret, "the registration answers the secret")
	return ep.Secret
}

func TestRegistration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	strict := notify.NewWebhooks(b.pool, b.clock, false)

	t.Run("RefusedInput", func(t *testing.T) {
		for name, r := range map[string]notify.Registration{
			"NoURL":              {Events: []string{notify.RebateAccrued}},
			"Relative":           {URL: "/hook", Events: []string{notify.RebateAccrued}},
			"FTP":                {URL: "ftp://example.com/hook", Events: []string{notify.RebateAccrued}},
			"PlainHTTP":          {URL: "http://example.com/hook", Events: []string{notify.RebateAccrued}},
			"Credentials":        {URL: "https://user:pw@example.com/hook", Events: []string{notify.RebateAccrued}},
			"Fragment":           {URL: "https://example.com/hook#x", Events: []string{notify.RebateAccrued}},
			"Loopback":           {URL: "https://127.0.0.1/hook", Events: []string{notify.RebateAccrued}},
			"LoopbackV6":         {URL: "https://[::1]/hook", Events: []string{notify.RebateAccrued}},
			"Localhost":          {URL: "https://localhost:8443/hook", Events: []string{notify.RebateAccrued}},
			"Private10":          {URL: "https://10.1.2.3/hook", Events: []string{notify.RebateAccrued}},
			"Private192":         {URL: "https://192.168.0.10/hook", Events: []string{notify.RebateAccrued}},
			"LinkLocalMetadata":  {URL: "https://169.254.169.254/latest/meta-data", Events: []string{notify.RebateAccrued}},
			"MappedLoopback":     {URL: "https://[::ffff:127.0.0.1]/hook", Events: []string{notify.RebateAccrued}},
			"Unspecified":        {URL: "https://0.0.0.0/hook", Events: []string{notify.RebateAccrued}},
			"NoEvents":           {URL: "https://example.com/hook"},
			"UnknownEvent":       {URL: "https://example.com/hook", Events: []string{"order.paid"}},
			"ShortSecret":        {URL: "https://example.com/hook", Events: []string{notify.RebateAccrued}, Secret: "short"},
			"NULInURL":           {URL: "https://example.com/\x00", Events: []string{notify.RebateAccrued}},
			"NewlineInURL":       {URL: "https://example.com/a\nb", Events: []string{notify.RebateAccrued}},
			"BadPort":            {URL: "https://example.com:99999/hook", Events: []string{notify.RebateAccrued}},
			"IDTooLong":          {ID: string(make([]byte, 201)), URL: "https://example.com/hook", Events: []string{notify.RebateAccrued}},
			"CGNAT":              {URL: "https://100.64.1.1/hook", Events: []string{notify.RebateAccrued}},
			"SubdomainLocalhost": {URL: "https://a.localhost/hook", Events: []string{notify.RebateAccrued}},
		} {
			_, _, err := strict.Register(ctx, r)
			require.True(t, apperr.Is(err, apperr.Validation), "%s: %v", name, err)
		}
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM webhook_endpoints`).Scan(&n))
		require.Zero(t, n)
	})

	t.Run("IdempotentByID", func(t *testing.T) {
		r := notify.Registration{ID: "shop-main", URL: "https://example.com/hook", Events: []string{notify.RebateAccrued, notify.RebateAccrued}}
		first, replayed, err := strict.Register(ctx, r)
		require.NoError(t, err)
		require.False(t, replayed)
		require.Equal(t, []string{notify.RebateAccrued}, first.Events, "duplicates are dropped")
		again, replayed, err := strict.Register(ctx, r)
		require.NoError(t, err)
		require.True(t, replayed)
		require.Equal(t, first, again, "the replay answers the secret generated the first time")
		r.URL = "https://example.com/other"
		_, _, err = strict.Register(ctx, r)
		require.True(t, apperr.Is(err, apperr.IdempotencyConflict), "%v", err)
		got, err := strict.Get(ctx, "shop-main")
		require.NoError(t, err)
		require.Empty(t, got.Secret, "reads never show the secret")
	})
}
