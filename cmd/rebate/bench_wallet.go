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
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/auth"
	"github.com/rebate-ledger/rebate/internal/httpapi"
	"github.com/rebate-ledger/rebate/internal/jobs"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/rebate"
	"github.com/rebate-ledger/rebate/internal/wallet"
	"github.com/rebate-ledger/rebate/internal/wallet/csvbank"
)

// benchWalletCmd measures the wallet over real HTTP against a server it starts in this process:
// withdrawals by random members of a funded forest, then every approved withdrawal cut into batches
// and a result posted for each item, beside pgbench's ceiling measured around both phases.
func benchWalletCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench wallet", stderr)
	dbURL := databaseFlag(fs)
	duration := fs.Duration("duration", 20*time.Second, "how long the withdrawal phase (and each pgbench run) lasts")
	concurrency := fs.Int("concurrency", 16, "concurrent HTTP clients (and pgbench clients)")
	members := fs.Int("members", 100_000, "funded members")
	perRequest := fs.Int("results-per-request", 500, "payout results per POST /v1/payout-batches/{id}/results")
	skipCeiling := fs.Bool("skip-ceiling", false, "do not run pgbench")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of the withdrawal phase to this file")
	coalesceWorkers := fs.Int("coalesce-workers", 4, "the in-process server's --coalesce-workers (withdrawal requests decided together; 0: each alone)")
	coalesceMax := fs.Int("coalesce-max", 64, "the in-process server's --coalesce-max")
	warmup := fs.Duration("warmup", 3*time.Second, "post withdrawals this long first, unmeasured, then ANALYZE (plans and caches of a fresh database)")
	pool, err := benchDatabase(ctx, fs, dbURL, args, concurrency, func() error {
		if *concurrency < 1 || *members < 10 || *perRequest < 1 || *perRequest > wallet.MaxResults {
			return errors.New("--concurrency at least 1, --members at least 10, --results-per-request 1 to 5000")
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer pool.Close()
	fmt.Fprintf(stderr, "bench: preparing %d members with 10000.00 CNY available each\n", *members)
	if err := benchForest(ctx, pool, *members); err != nil {
		return err
	}
	l := ledger.New(pool)
	if err := fundMembers(ctx, l, *members); err != nil {
		return err
	}
	// Members' withdrawing accounts exist, as the held accounts do in the other benches: the
	// measured phase is the steady state, not every member's first withdrawal.
	if err := createMemberAccounts(ctx, pool, *members, func(i int) string { return "bm" + strconv.Itoa(i) }, "withdrawing", money.CNY); err != nil {
		return err
	}
	if err := analyze(ctx, pool); err != nil {
		return err
	}
	if _, err := l.WarmCache(ctx, warmAccounts); err != nil {
		return err
	}
	w := wallet.New(pool, l, csvbank.Provider{})
	if *coalesceWorkers > 0 {
		defer w.Coalesce(*coalesceWorkers, *coalesceMax)()
	}
	engine := rebate.NewEngine(pool, l)
	rc, err := jobs.NewClient(pool, l, engine, jobs.Config{Workers: true, Wallet: w, Logger: slog.New(slog.DiscardHandler)})
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
	srv := &http.Server{Handler: httpapi.New(httpapi.Config{Pool: pool, Ledger: l, Engine: engine, Wallet: w,
		Logger: slog.New(slog.DiscardHandler), KeyCacheTTL: 5 * time.Second})}
	go srv.Serve(ln) //nolint:errcheck
	defer srv.Close()
	url := "http://" + ln.Addr().String()
	shop, err := auth.CreateKey(ctx, pool, auth.Shop, "bench-shop")
	if err != nil {
		return err
	}
	operator, err := auth.CreateKey(ctx, pool, auth.Operator, "bench-operator")
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: *concurrency}}

	if err := warmUp(ctx, pool, *warmup, stderr, func() error {
		_, err := benchWithdrawals(ctx, client, url, shop, *warmup, *concurrency, *members, io.Discard)
		return err
	}); err != nil {
		return err
	}
	// The pool's connections planned their statements on empty wallet tables: new ones plan anew.
	pool.Reset()
	var wres withdrawalsResult
	var rres resultsResult
	ceiling, err := bracketed(ctx, *skipCeiling, *dbURL, *concurrency, *duration, stderr, func() error {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		wres, err = benchWithdrawals(ctx, client, url, shop, *duration, *concurrency, *members, stderr)
		stop()
		if err != nil {
			return err
		}
		rres, err = benchResults(ctx, client, w, url, operator, *concurrency, *perRequest, stderr)
		return err
	})
	if err != nil {
		return err
	}
	rep, err := w.Report(ctx, time.Time{}, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		return err
	}
	reconciled := len(rep.Reconciliations) > 0
	for _, r := range rep.Reconciliations {
		reconciled = reconciled && r.OK
	}
	rw, rr := 0.0, 0.0
	if ceiling > 0 {
		rw, rr = wres.perSec/ceiling, rres.perSec/ceiling
	}
	fmt.Fprintf(stdout, "concurrency=%d withdrawals=%d refused=%d withdrawals_p50_ms=%.2f withdrawals_p99_ms=%.2f cpu_us_per_withdrawal=%.0f batches=%d results=%d results_requests=%d cpu_us_per_result=%.0f reconciled=%t\n",
		*concurrency, wres.accepted, wres.refused, wres.p50, wres.p99, wres.cpuMicros, rres.batches, rres.items, rres.requests, rres.cpuMicros, reconciled)
	fmt.Fprintf(stdout, "wallet withdrawals/s=%.0f results/s=%.0f ceiling_tps=%.0f ratio_withdrawals=%.2f ratio_results=%.2f\n",
		wres.perSec, rres.perSec, ceiling, rw, rr)
	if !reconciled {
		return errors.New("the payout report does not reconcile with the journal")
	}
	return nil
}

// fundMembers credits every bench member 10000.00 CNY available, 200 members an entry, as a release
// would (debit rebate_expense, credit available).
func fundMembers(ctx context.Context, l *ledger.Ledger, n int) error {
	each := money.MustParse("10000.00", money.CNY)
	const per = 200
	var reqs []ledger.EntryRequest
	for start := 0; start < n; start += per {
		end := min(start+per, n)
		total, _ := money.New(each.Decimal().Mul(decimal.NewFromInt(int64(end-start))), money.CNY)
		req := ledger.EntryRequest{Key: "bench-fund:" + strconv.Itoa(start), Kind: "release", OccurredAt: time.Now(),
			Postings: []ledger.PostingRequest{{Account: ledger.RebateExpense, Side: ledger.Debit, Amount: total}}}
		for i := start; i < end; i++ {
			req.Postings = append(req.Postings, ledger.PostingRequest{Account: ledger.MemberAccount("bm"+strconv.Itoa(i), "available"),
				Side: ledger.Credit, Amount: each})
		}
		reqs = append(reqs, req)
	}
	for len(reqs) > 0 {
		k := min(len(reqs), 25)
		err := l.Transact(ctx, func(tx pgx.Tx) error { _, err := l.PostMany(ctx, tx, reqs[:k]); return err })
		if err != nil {
			return fmt.Errorf("fund bench members: %w", err)
		}
		reqs = reqs[k:]
	}
	return nil
}

type withdrawalsResult struct {
	accepted, refused int
	perSec, p50, p99  float64
	cpuMicros         float64 // the machine's CPU per accepted withdrawal (this process and PostgreSQL)
}

func benchWithdrawals(ctx context.Context, client *http.Client, url, key string, d time.Duration, concurrency, members int, stderr io.Writer) (withdrawalsResult, error) {
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	fmt.Fprintf(stderr, "bench: posting withdrawals for %s (%d clients)\n", d, concurrency)
	var (
		mu        sync.Mutex
		res       withdrawalsResult
		latencies []time.Duration
		firstErr  error
	)
	deadline := time.Now().Add(d)
	start, startCPU := time.Now(), readCPUTicks()
	var wg sync.WaitGroup
	for c := range concurrency {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(c), uint64(time.Now().UnixNano())))
			var local withdrawalsResult
			var lat []time.Duration
			for seq := 0; time.Now().Before(deadline) && ctx.Err() == nil; seq++ {
				member := "bm" + strconv.Itoa(r.IntN(members))
				body, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("bw-%s-%d-%d", run, c, seq),
					"amount": fmt.Sprintf("%d.%02d", 10+r.IntN(1990), r.IntN(100)), "currency": "CNY",
					"destination": map[string]string{"type": "bank", "account": "62220200" + strconv.Itoa(100000+r.IntN(900000)), "name": "Bench Member"}})
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/members/"+member+"/withdrawals", bytes.NewReader(body))
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
				switch {
				case resp.StatusCode == http.StatusCreated:
					local.accepted++
				case resp.StatusCode == http.StatusUnprocessableEntity:
					local.refused++ // a member at its daily count: the limits are part of the work
				default:
					mu.Lock()
					firstErr = cmpErr(firstErr, fmt.Errorf("withdrawal answered %d: %.200s", resp.StatusCode, out))
					mu.Unlock()
					return
				}
			}
			mu.Lock()
			res.accepted += local.accepted
			res.refused += local.refused
			latencies = append(latencies, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if firstErr != nil {
		return res, firstErr
	}
	res.perSec = float64(res.accepted) / time.Since(start).Seconds()
	res.cpuMicros, _, _ = readCPUTicks().perEntry(startCPU, res.accepted)
	slices.Sort(latencies)
	if len(latencies) > 0 {
		res.p50 = float64(latencies[len(latencies)/2].Microseconds()) / 1000
		res.p99 = float64(latencies[len(latencies)*99/100].Microseconds()) / 1000
	}
	return res, nil
}

type resultsResult struct {
	batches, items, requests int
	perSec                   float64
	cpuMicros                float64 // the machine's CPU per result
}

// benchResults cuts every approved withdrawal into batches (not measured: a cut is one statement per
// batch) and then posts a result for every item, perRequest items a request, from concurrency
// clients; about one item in twenty fails and returns its money.
func benchResults(ctx context.Context, client *http.Client, w *wallet.Wallet, url, key string, concurrency, perRequest int, stderr io.Writer) (resultsResult, error) {
	type chunk struct {
		batch string
		items []int64
	}
	var chunks []chunk
	var res resultsResult
	for {
		b, _, err := w.Cut(ctx, wallet.CutRequest{Currency: "CNY"})
		if err != nil {
			return res, err
		}
		if b == nil {
			break
		}
		res.batches++
		for i := 0; i < len(b.Items); i += perRequest {
			c := chunk{batch: b.ID}
			for _, it := range b.Items[i:min(i+perRequest, len(b.Items))] {
				c.items = append(c.items, it.ID)
			}
			chunks = append(chunks, c)
			res.items += len(c.items)
		}
	}
	fmt.Fprintf(stderr, "bench: posting results for %d items of %d batches (%d clients, %d per request)\n", res.items, res.batches, concurrency, perRequest)
	work := make(chan chunk)
	var mu sync.Mutex
	var firstErr error
	start, startCPU := time.Now(), readCPUTicks()
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for c := range work {
				items := make([]map[string]any, len(c.items))
				for i, id := range c.items {
					items[i] = map[string]any{"item_id": id, "status": "paid", "reference": "BENCH-" + strconv.FormatInt(id, 10)}
					if id%20 == 0 {
						items[i] = map[string]any{"item_id": id, "status": "failed", "reason": "bench: refused by the bank"}
					}
				}
				body, _ := json.Marshal(map[string]any{"items": items})
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/payout-batches/"+c.batch+"/results", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err == nil {
					out, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || bytes.Contains(out, []byte(`"problem"`)) {
						err = fmt.Errorf("results answered %d: %.300s", resp.StatusCode, out)
					}
				}
				mu.Lock()
				res.requests++
				if err != nil {
					firstErr = cmpErr(firstErr, err)
				}
				mu.Unlock()
			}
		})
	}
	for _, c := range chunks {
		work <- c
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return res, firstErr
	}
	res.perSec = float64(res.items) / time.Since(start).Seconds()
	res.cpuMicros, _, _ = readCPUTicks().perEntry(startCPU, res.items)
	return res, nil
}
