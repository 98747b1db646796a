package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rebate-ledger/rebate/internal/clock"
	"github.com/rebate-ledger/rebate/internal/metrics"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// Options say how deliveries are sent and retried. Zero values take the defaults in brackets.
type Options struct {
	// Timeout bounds one attempt, from dialling to the end of the response's headers [10s].
	Timeout time.Duration
	// FirstRetry is the wait after the first failed attempt; each further failure doubles it, up to
	// MaxRetry [10s, 1h].
	FirstRetry, MaxRetry time.Duration
	// GiveUpAfter is how long after the event a delivery keeps being retried before it is dead [24h].
	GiveUpAfter time.Duration
	// Batch is how many due deliveries one round claims [100]; Concurrency how many endpoints are
	// sent to at once [16].
	Batch, Concurrency int
	// AllowLocal lets deliveries go to loopback, private and link-local addresses (tests and local
	// development). Off, the sender refuses them at connect time, whatever the URL's name resolves to.
	AllowLocal bool
	Clock      clock.Clock
	Logger     *slog.Logger
}

// MaxBody is the largest event body sent; a larger one is dead at once. Responses are read up to
// maxResponse bytes and discarded (only the status matters).
const (
	MaxBody     = 256 << 10
	maxResponse = 64 << 10
)

func (o *Options) defaults() {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.FirstRetry <= 0 {
		o.FirstRetry = 10 * time.Second
	}
	if o.MaxRetry <= 0 {
		o.MaxRetry = time.Hour
	}
	if o.GiveUpAfter <= 0 {
		o.GiveUpAfter = 24 * time.Hour
	}
	if o.Batch <= 0 {
		o.Batch = 100
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Dispatcher sends the outbox's due deliveries. River's webhooks.dispatch job runs it; several may
// run at once (in several processes): each claims its own rows.
type Dispatcher struct {
	pool   *pgxpool.Pool
	opts   Options
	client *http.Client
}

// NewDispatcher builds the dispatcher and its HTTP client: no proxy, no redirects followed, an
// address guard at connect time, timeouts on every phase.
func NewDispatcher(pool *pgxpool.Pool, opts Options) *Dispatcher {
	opts.defaults()
	dialer := &net.Dialer{Timeout: opts.Timeout, Control: guard(opts.AllowLocal)}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would connect for us, past the guard
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   opts.Timeout,
		ResponseHeaderTimeout: opts.Timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
	client := &http.Client{
		Transport: transport,
		Timeout:   opts.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is an answer, and not a 2xx one
		},
	}
	return &Dispatcher{pool: pool, opts: opts, client: client}
}

// errRefusedAddress is the guard's refusal.
var errRefusedAddress = errors.New("refused: the address is loopback, private or link-local")

// guard refuses connections to addresses a public endpoint cannot have. It runs on the address
// actually dialled (after DNS), so a name that resolves inward is refused too.
func guard(allowLocal bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		if allowLocal {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", errRefusedAddress, address)
		}
		if !publicAddr(ap.Addr()) {
			return fmt.Errorf("%w: %s", errRefusedAddress, ap.Addr())
		}
		return nil
	}
}

// Run sends due deliveries, round after round, until a round finds fewer than a batch due (or ctx
// ends). It answers how many attempts it made.
func (d *Dispatcher) Run(ctx context.Context) (int, error) {
	total := 0
	for ctx.Err() == nil {
		now := d.opts.Clock.Now()
		rows, err := store.New(d.pool).WebhookDeliveryClaim(ctx, sqlc.WebhookDeliveryClaimParams{
			Now: now, LeaseUntil: now.Add(2*d.opts.Timeout + 30*time.Second), MaxRows: int32(d.opts.Batch)})
		if err != nil {
			return total, fmt.Errorf("claim webhook deliveries: %w", err)
		}
		if len(rows) == 0 {
			return total, nil
		}
		total += len(rows)
		d.round(ctx, rows)
		if len(rows) < d.opts.Batch {
			return total, nil
		}
	}
	return total, ctx.Err()
}

// round sends one claim's deliveries: one endpoint's in order, several endpoints at once. When an
// endpoint cannot be reached, the rest of its deliveries in the round wait for their next attempt
// without being tried: a dead endpoint costs one timeout per round, not one per delivery.
func (d *Dispatcher) round(ctx context.Context, rows []sqlc.WebhookDeliveryClaimRow) {
	groups := map[string][]sqlc.WebhookDeliveryClaimRow{}
	var order []string
	for _, r := range rows {
		if _, ok := groups[r.Url]; !ok {
			order = append(order, r.Url)
		}
		groups[r.Url] = append(groups[r.Url], r)
	}
	sem := make(chan struct{}, d.opts.Concurrency)
	var wg sync.WaitGroup
	for _, u := range order {
		wg.Add(1)
		sem <- struct{}{}
		go func(group []sqlc.WebhookDeliveryClaimRow) {
			defer func() { <-sem; wg.Done() }()
			var unreachable error
			for _, r := range group {
				if unreachable != nil {
					d.record(ctx, r, 0, fmt.Errorf("not tried: the endpoint was unreachable a moment ago (%v)", unreachable))
					continue
				}
				status, err := d.send(ctx, r)
				if err != nil && status == 0 {
					unreachable = err
				}
				d.record(ctx, r, status, err)
			}
		}(groups[u])
	}
	wg.Wait()
}

// send makes one attempt: the status answered (0 when none) and why it is not a success.
func (d *Dispatcher) send(ctx context.Context, r sqlc.WebhookDeliveryClaimRow) (int, error) {
	b := body(r.EventID, r.EventType, r.CreatedAt, r.Data)
	if len(b) > MaxBody {
		return 0, errTooLarge
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.Url, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	now := d.opts.Clock.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "rebate-ledger-webhooks/1")
	req.Header.Set(HeaderID, r.EventID)
	req.Header.Set(HeaderTimestamp, fmt.Sprint(now.Unix()))
	req.Header.Set(HeaderSignature, Sign(r.Secret, now, b))
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, nil
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return resp.StatusCode, fmt.Errorf("answered %d: redirects are not followed", resp.StatusCode)
	}
	return resp.StatusCode, fmt.Errorf("answered %d", resp.StatusCode)
}

var errTooLarge = fmt.Errorf("the event's body exceeds %d bytes", MaxBody)

// record writes an attempt's result: delivered, retried after the backoff, or dead once the next
// attempt would fall after GiveUpAfter (or the body can never be sent).
func (d *Dispatcher) record(ctx context.Context, r sqlc.WebhookDeliveryClaimRow, status int, sendErr error) {
	now := d.opts.Clock.Now()
	q := store.New(d.pool)
	// The result is recorded even when the job's context ends: the attempt was made.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var err error
	if sendErr == nil {
		metrics.WebhookAttempt("delivered")
		err = q.WebhookDeliveryDelivered(ctx, sqlc.WebhookDeliveryDeliveredParams{ID: r.ID, Now: now, LastStatus: pgInt4(status)})
	} else {
		next := now.Add(d.backoff(int(r.Attempts)))
		dead := errors.Is(sendErr, errTooLarge) || next.After(r.CreatedAt.Add(d.opts.GiveUpAfter))
		result := "retry"
		if dead {
			result = "dead"
			d.opts.Logger.Warn("webhook delivery dead", "delivery_id", r.ID, "event_id", r.EventID, "attempts", r.Attempts, "error", sendErr)
		}
		metrics.WebhookAttempt(result)
		msg := sendErr.Error()
		if len(msg) > 500 {
			msg = msg[:500]
		}
		err = q.WebhookDeliveryFailed(ctx, sqlc.WebhookDeliveryFailedParams{ID: r.ID, Dead: dead, NextAttemptAt: next,
			LastStatus: pgInt4(status), LastError: msg})
	}
	if err != nil {
		// The claim's lease runs out and the delivery is tried again: at least once, never lost.
		d.opts.Logger.Error("record webhook attempt", "delivery_id", r.ID, "error", err)
	}
}

// backoff is the wait after the n-th failed attempt: FirstRetry doubled n-1 times, at most MaxRetry.
func (d *Dispatcher) backoff(n int) time.Duration {
	w := d.opts.FirstRetry
	for i := 1; i < n && w < d.opts.MaxRetry; i++ {
		w *= 2
	}
	return min(w, d.opts.MaxRetry)
}

func pgInt4(v int) pgtype.Int4 {
	if v == 0 {
		return pgtype.Int4{}
	}
	return pgtype.Int4{Int32: int32(v), Valid: true}
}
