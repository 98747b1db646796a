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

// lockClass is the first key of the advisory locks that claim deliveries ("webh").
const lockClass = 0x77656268

// Run sends due deliveries, round after round, until a round finds fewer than a batch due (or ctx
// ends). It answers how many attempts it made. The claims are session advisory locks on one pooled
// connection held for the run: if the process dies, the connection and its locks go with it.
func (d *Dispatcher) Run(ctx context.Context) (int, error) {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	broken := false
	defer func() {
		// No claim outlives the run on a pooled connection: every session lock is released, or the
		// connection is closed (which releases them) when that cannot be done.
		if !broken {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			broken = store.New(conn).WebhookDeliveryUnlockAll(uctx) != nil
			cancel()
		}
		if broken {
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
		conn.Release()
	}()
	q := store.New(conn)
	total := 0
	for ctx.Err() == nil {
		rows, err := q.WebhookDeliveryClaim(ctx, sqlc.WebhookDeliveryClaimParams{LockClass: lockClass, Now: d.opts.Clock.Now(),
			MaxRows: int32(d.opts.Batch), Candidates: int32(2 * d.opts.Batch)})
		if err != nil {
			broken = true
			return total, fmt.Errorf("claim webhook deliveries: %w", err)
		}
		if len(rows) == 0 {
			return total, nil
		}
		total += len(rows)
		if err := d.round(ctx, q, rows); err != nil {
			broken = true
			return total, err
		}
		if len(rows) < d.opts.Batch {
			return total, nil
		}
	}
	return total, ctx.Err()
}

// round sends one claim's deliveries: several endpoints at once, and one endpoint's in up to four
// lanes. When an endpoint cannot be reached, the rest of its lane's deliveries in the round wait for
// their next attempt without being tried: a dead endpoint costs at most four timeouts per round,
// not one per delivery. The round's results are written together, in one statement.
func (d *Dispatcher) round(ctx context.Context, q *store.Queries, rows []sqlc.WebhookDeliveryClaimRow) error {
	groups := map[string][]int{}
	var order []string
	for i, r := range rows {
		if _, ok := groups[r.Url]; !ok {
			order = append(order, r.Url)
		}
		groups[r.Url] = append(groups[r.Url], i)
	}
	type result struct {
		status int
		err    error
	}
	results := make([]result, len(rows))
	// An endpoint's deliveries go in up to four lanes, each in order.
	var lanes [][]int
	for _, u := range order {
		g := groups[u]
		n := min(4, len(g))
		for l := range n {
			var lane []int
			for k := l; k < len(g); k += n {
				lane = append(lane, g[k])
			}
			lanes = append(lanes, lane)
		}
	}
	sem := make(chan struct{}, d.opts.Concurrency)
	var wg sync.WaitGroup
	for _, lane := range lanes {
		wg.Add(1)
		sem <- struct{}{}
		go func(group []int) {
			defer func() { <-sem; wg.Done() }()
			var unreachable error
			for _, i := range group {
				if unreachable != nil {
					results[i] = result{0, fmt.Errorf("not tried: the endpoint was unreachable a moment ago (%v)", unreachable)}
					continue
				}
				status, err := d.send(ctx, rows[i])
				if err != nil && status == 0 {
					unreachable = err
				}
				results[i] = result{status, err}
			}
		}(lane)
	}
	wg.Wait()
	now := d.opts.Clock.Now()
	var p sqlc.WebhookDeliveryRecordParams
	p.Now = now
	for i, r := range rows {
		status, next, msg := "delivered", now, ""
		if err := results[i].err; err != nil {
			next = now.Add(d.backoff(int(r.Attempts) + 1))
			status = "pending"
			if errors.Is(err, errTooLarge) || next.After(r.CreatedAt.Add(d.opts.GiveUpAfter)) {
				status = "dead"
				d.opts.Logger.Warn("webhook delivery dead", "endpoint_id", r.EndpointID, "delivery_id", r.ID, "event_id", r.EventID,
					"attempts", r.Attempts+1, "error", err)
			}
			msg = err.Error()
			if len(msg) > 500 {
				msg = msg[:500]
			}
		}
		metrics.WebhookAttempt(map[string]string{"delivered": "delivered", "pending": "retry", "dead": "dead"}[status])
		p.EndpointIds = append(p.EndpointIds, r.EndpointID)
		p.Ids = append(p.Ids, r.ID)
		p.Statuses = append(p.Statuses, status)
		p.NextAttemptAts = append(p.NextAttemptAts, next)
		p.LastStatuses = append(p.LastStatuses, int32(results[i].status))
		p.LastErrors = append(p.LastErrors, msg)
	}
	// The results are recorded even when the job's context ends: the attempts were made. If this
	// fails, the caller closes the connection, the claims go with it, and the deliveries are sent
	// again: at least once.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := q.WebhookDeliveryRecord(rctx, p); err != nil {
		return fmt.Errorf("record %d webhook attempts: %w", len(rows), err)
	}
	if err := q.WebhookDeliveryUnlock(rctx, sqlc.WebhookDeliveryUnlockParams{LockClass: lockClass, Ids: p.Ids}); err != nil {
		return fmt.Errorf("release webhook claims: %w", err)
	}
	return nil
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

// backoff is the wait after the n-th failed attempt: FirstRetry doubled n-1 times, at most MaxRetry.
func (d *Dispatcher) backoff(n int) time.Duration {
	w := d.opts.FirstRetry
	for i := 1; i < n && w < d.opts.MaxRetry; i++ {
		w *= 2
	}
	return min(w, d.opts.MaxRetry)
}

// Prune deletes settled deliveries (delivered, dead, cancelled) created more than retention ago, a
// thousand at a time, and answers how many. Pending deliveries are never deleted (a trigger refuses).
func Prune(ctx context.Context, pool *pgxpool.Pool, now time.Time, retention time.Duration) (int64, error) {
	var total int64
	for ctx.Err() == nil {
		n, err := store.New(pool).WebhookDeliveryPrune(ctx, sqlc.WebhookDeliveryPruneParams{Before: now.Add(-retention), MaxRows: 1000})
		if err != nil {
			return total, fmt.Errorf("prune webhook deliveries: %w", err)
		}
		total += n
		if n < 1000 {
			return total, nil
		}
	}
	return total, ctx.Err()
}
