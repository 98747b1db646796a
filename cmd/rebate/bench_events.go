package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rebate-ledger/rebate/internal/auth"
	"github.com/rebate-ledger/rebate/internal/httpapi"
	"github.com/rebate-ledger/rebate/internal/jobs"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/notify"
	"github.com/rebate-ledger/rebate/internal/program"
	"github.com/rebate-ledger/rebate/internal/rebate"
	"github.com/rebate-ledger/rebate/internal/store"
)

// benchEventsCmd posts order.paid events (and about 10% refunds) over real HTTP to a server it starts
// in this process (or --url with --key), beside pgbench's ceiling.
func benchEventsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench events", stderr)
	dbURL := databaseFlag(fs)
	duration := fs.Duration("duration", 20*time.Second, "how long each phase runs")
	concurrency := fs.Int("concurrency", 16, "concurrent HTTP clients (and pgbench clients)")
	batch := fs.Int("batch", 1, "events per request (POST /v1/events/batch when > 1)")
	members := fs.Int("members", 100_000, "members in the referral forest")
	url := fs.String("url", "", "running servers to send to, comma-separated (clients take them in turn; their database must hold the forest); default: start one here")
	key := fs.String("key", "", "a shop key for --url")
	skipCeiling := fs.Bool("skip-ceiling", false, "do not run pgbench")
	coalesceWorkers := fs.Int("coalesce-workers", 4, "the in-process server's --coalesce-workers")
	coalesceMax := fs.Int("coalesce-max", 64, "the in-process server's --coalesce-max")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of the posting phase to this file")
	warmup := fs.Duration("warmup", 3*time.Second, "run the workload this long first, unmeasured, then ANALYZE (plans and caches of a fresh database)")
	webhook := fs.Bool("webhook", false, "subscribe one webhook endpoint (a local receiver answering 200) to every event type, and deliver to it while the bench runs")
	webhookDeliver := fs.Bool("webhook-deliver", true, "with --webhook: run the dispatcher (false: write the outbox only, to measure the write path's share)")
	pool, err := benchDatabase(ctx, fs, dbURL, args, concurrency, func() error {
		if *batch < 1 || *batch > httpapi.MaxBatch || *concurrency < 1 || *members < 10 {
			return errors.New("--batch must be 1 to 1000, --concurrency at least 1, --members at least 10")
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer pool.Close()
	fmt.Fprintf(stderr, "bench: building a referral forest of %d members (depth up to 5)\n", *members)
	if err := benchForest(ctx, pool, *members); err != nil {
		return err
	}
	if *url == "" {
		l := ledger.New(pool)
		if _, err := l.WarmCache(ctx, warmAccounts); err != nil {
			return err
		}
		engine := rebate.NewEngine(pool, l)
		if *coalesceWorkers > 0 {
			defer engine.Coalesce(*coalesceWorkers, *coalesceMax)()
		}
		cfg := jobs.Config{Workers: true, Logger: slog.New(slog.DiscardHandler)}
		if *webhook {
			stop, err := benchWebhook(ctx, pool)
			if err != nil {
				return err
			}
			defer stop()
			if *webhookDeliver {
				cfg.Webhooks = notify.NewDispatcher(pool, notify.Options{AllowLocal: true, Logger: cfg.Logger})
			}
		}
		rc, err := jobs.NewClient(pool, l, engine, cfg)
		if err != nil {
			return err
		}
		if err := rc.Start(ctx); err != nil {
			return err
		}
		defer rc.Stop(context.WithoutCancel(ctx)) //nolint:errcheck
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: httpapi.New(httpapi.Config{Pool: pool, Ledger: l, Engine: engine, Logger: slog.New(slog.DiscardHandler), KeyCacheTTL: 5 * time.Second})}
		go srv.Serve(ln) //nolint:errcheck
		defer srv.Close()
		*url = "http://" + ln.Addr().String()
		if *key, err = auth.CreateKey(ctx, pool, auth.Shop, "bench"); err != nil {
			return err
		}
	}
	var res eventsResult
	if err := warmUp(ctx, pool, *warmup, stderr, func() error {
		_, err := benchEvents(ctx, *url, *key, *warmup, *concurrency, *batch, *members, io.Discard)
		return err
	}); err != nil {
		return err
	}
	ceiling, err := bracketed(ctx, *skipCeiling, *dbURL, *concurrency, *duration, stderr, func() error {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
		res, err = benchEvents(ctx, *url, *key, *duration, *concurrency, *batch, *members, stderr)
		return err
	})
	if err != nil {
		return err
	}
	ratio := 0.0
	if ceiling > 0 {
		ratio = res.perSec / ceiling
	}
	fmt.Fprintf(stdout, "batch=%d concurrency=%d events=%d paid=%d refunds=%d requests=%d rejected=%d\n",
		*batch, *concurrency, res.events, res.paid, res.refunds, res.requests, res.rejected)
	if *webhook {
		var delivered, pending int
		if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'delivered'), count(*) FILTER (WHERE status = 'pending') FROM webhook_deliveries`).
			Scan(&delivered, &pending); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "webhook=on deliveries_delivered=%d deliveries_pending=%d\n", delivered, pending)
	}
	if res.cpuKnown {
		fmt.Fprintf(stdout, "cpu_us_per_event=%.0f steal=%.1f%%\n", res.cpuMicros, 100*res.steal)
	}
	fmt.Fprintf(stdout, "events/s=%.0f p50_ms=%.2f p99_ms=%.2f ceiling_tps=%.0f ratio=%.2f\n", res.perSec, res.p50, res.p99, ceiling, ratio)
	return nil
}

// benchWebhook starts a local receiver that answers 200 to everything and subscribes it to every
// event type: the outbox then writes a delivery for each note, and the dispatcher sends them.
func benchWebhook(ctx context.Context, pool *pgxpool.Pool) (stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	})}
	go srv.Serve(ln) //nolint:errcheck
	if _, _, err := notify.NewWebhooks(pool, nil, true).Register(ctx, notify.Registration{URL: "http://" + ln.Addr().String() + "/hook",
		Events: notify.Types}); err != nil {
		srv.Close()
		return nil, err
	}
	return func() { srv.Close() }, nil
}

// benchForest bulk-loads bench members: member i's inviter is a random earlier member whose depth
// is below 5 (or none), with the upline a registration would have fixed.
func benchForest(ctx context.Context, pool *pgxpool.Pool, n int) error {
	var have int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM members WHERE id LIKE 'bm%'").Scan(&have); err != nil {
		return err
	}
	if have < n {
		if err := loadForest(ctx, pool, n); err != nil {
			return err
		}
	}
	name := func(i int) string { return "bm" + strconv.Itoa(i) }
	for _, cur := range []money.Currency{money.CNY, money.PTS} {
		if err := createHeldAccounts(ctx, pool, n, name, cur); err != nil {
			return err
		}
	}
	return analyze(ctx, pool)
}

func loadForest(ctx context.Context, pool *pgxpool.Pool, n int) error {
	r := rand.New(rand.NewPCG(42, 42))
	uplines := make([][]string, n)
	depth := make([]int, n)
	rows := make([][]any, 0, n)
	for i := range n {
		id := "bm" + strconv.Itoa(i)
		reg := rebate.Registration{ID: id}
		var referrer any
		if i > 0 && r.IntN(10) > 0 {
			p := r.IntN(i)
			if depth[p] < 5 {
				depth[i] = depth[p] + 1
				reg.ReferrerID = "bm" + strconv.Itoa(p)
				referrer = reg.ReferrerID
				uplines[i] = append([]string{reg.ReferrerID}, uplines[p]...)
				if len(uplines[i]) > program.MaxLevels {
					uplines[i] = uplines[i][:program.MaxLevels]
				}
			}
		}
		if uplines[i] == nil {
			uplines[i] = []string{}
		}
		h := rebate.RegistrationHash(reg)
		rows = append(rows, []any{id, rebate.ReferralCodeFor(i), referrer, uplines[i], h[:]})
	}
	err := store.WithTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"members"}, []string{"id", "referral_code", "referrer_id", "upline", "request_hash"}, pgx.CopyFromRows(rows))
		return err
	})
	if err != nil {
		return fmt.Errorf("load members (a partly loaded forest from an earlier run? use a fresh database): %w", err)
	}
	return nil
}

type eventsResult struct {
	events, paid, refunds, requests, rejected int
	perSec, p50, p99                          float64
	// cpuMicros is the machine's CPU time per event in the measured phase (every process: the
	// service, PostgreSQL, the clients); less noisy than throughput on a shared machine.
	cpuMicros, steal float64
	cpuKnown         bool
}

func benchEvents(ctx context.Context, url, key string, d time.Duration, concurrency, batch, members int, stderr io.Writer) (eventsResult, error) {
	urls := strings.Split(url, ",")
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	var (
		mu        sync.Mutex
		res       eventsResult
		latencies []time.Duration
		firstErr  error
	)
	fmt.Fprintf(stderr, "bench: posting events for %s (%d clients, %d per request)\n", d, concurrency, batch)
	deadline := time.Now().Add(d)
	start, startCPU := time.Now(), readCPUTicks()
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			var paidOrders []string
			seq := 0
			var local eventsResult
			var lat []time.Duration
			for time.Now().Before(deadline) && ctx.Err() == nil {
				events := make([]map[string]any, batch)
				for i := range events {
					seq++
					id := fmt.Sprintf("%s-%d-%d", run, w, seq)
					if len(paidOrders) > 0 && r.IntN(10) == 0 {
						events[i] = map[string]any{"id": "ev-" + id, "type": "order.refunded", "occurred_at": time.Now().Format(time.RFC3339Nano),
							"data": map[string]any{"order_id": paidOrders[r.IntN(len(paidOrders))], "refund_id": "rf-" + id, "amount": "0.01"}}
						local.refunds++
						continue
					}
					order := "bo-" + id
					paidOrders = append(paidOrders, order)
					events[i] = map[string]any{"id": "ev-" + id, "type": "order.paid", "occurred_at": time.Now().Format(time.RFC3339Nano),
						"data": map[string]any{"order_id": order, "member_id": "bm" + strconv.Itoa(r.IntN(members)),
							"amount": fmt.Sprintf("%d.%02d", 1+r.IntN(500), r.IntN(100)), "currency": "CNY"}}
					local.paid++
				}
				var body []byte
				path := "/v1/events"
				if batch == 1 {
					body, _ = json.Marshal(events[0])
				} else {
					body, _ = json.Marshal(map[string]any{"events": events})
					path = "/v1/events/batch"
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, urls[w%len(urls)]+path, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					return
				}
				out, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(t0))
				local.requests++
				switch {
				case batch == 1 && resp.StatusCode < 300:
					local.events++
				case batch == 1:
					local.rejected++
				default:
					var br struct {
						Results []struct {
							Status int `json:"status"`
						} `json:"results"`
					}
					if resp.StatusCode != http.StatusOK || json.Unmarshal(out, &br) != nil {
						mu.Lock()
						firstErr = cmpErr(firstErr, fmt.Errorf("batch answered %d: %.200s", resp.StatusCode, out))
						mu.Unlock()
						return
					}
					for _, it := range br.Results {
						if it.Status < 300 {
							local.events++
						} else {
							local.rejected++
						}
					}
				}
			}
			mu.Lock()
			res.events += local.events
			res.paid += local.paid
			res.refunds += local.refunds
			res.requests += local.requests
			res.rejected += local.rejected
			latencies = append(latencies, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed, endCPU := time.Since(start), readCPUTicks()
	res.cpuMicros, res.steal, res.cpuKnown = endCPU.perEntry(startCPU, res.events)
	if firstErr != nil {
		return res, firstErr
	}
	res.perSec = float64(res.events) / elapsed.Seconds()
	slices.Sort(latencies)
	if len(latencies) > 0 {
		res.p50 = float64(latencies[len(latencies)/2].Microseconds()) / 1000
		res.p99 = float64(latencies[len(latencies)*99/100].Microseconds()) / 1000
	}
	return res, nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
