package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

func bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "events" {
		return benchEventsCmd(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "wallet" {
		return benchWalletCmd(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "export" {
		return benchExportCmd(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "ledger" {
		return errors.New("usage: rebate bench ledger|events|wallet [--duration 20s] [--concurrency 16] [--batch N]")
	}
	fs := newFlags("bench ledger", stderr)
	dbURL := databaseFlag(fs)
	duration := fs.Duration("duration", 20*time.Second, "how long each phase runs")
	concurrency := fs.Int("concurrency", 16, "concurrent writers (and pgbench clients)")
	batch := fs.Int("batch", 1, "entries per transaction")
	members := fs.Int("members", 100_000, "member accounts to spread credits over")
	skipCeiling := fs.Bool("skip-ceiling", false, "do not run pgbench")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of the ledger phase to this file")
	warmup := fs.Duration("warmup", 3*time.Second, "run the workload this long first, unmeasured, then ANALYZE (plans and caches of a fresh database)")
	prefill := fs.Int64("prefill", 0, "then grow the journal to this many postings (batch path) and measure again: how flat the write path stays as the journal grows")
	pool, err := benchDatabase(ctx, fs, dbURL, args[1:], concurrency, func() error {
		if *batch < 1 || *concurrency < 1 || *members < 3 {
			return errors.New("--batch and --concurrency must be at least 1, --members at least 3")
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer pool.Close()
	fmt.Fprintf(stderr, "bench: preparing %d member accounts\n", *members)
	if err := benchAccounts(ctx, pool, *members); err != nil {
		return err
	}
	var res benchResult
	if err := warmUp(ctx, pool, *warmup, stderr, func() error {
		_, err := benchLedger(ctx, pool, *warmup, *concurrency, *batch, *members, io.Discard)
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
		res, err = benchLedger(ctx, pool, *duration, *concurrency, *batch, *members, stderr)
		return err
	})
	if err != nil {
		return err
	}
	ratio := 0.0
	if ceiling > 0 {
		ratio = res.entriesPerSec / ceiling
	}
	fmt.Fprintf(stdout, "batch=%d concurrency=%d entries=%d transactions=%d refused=%d sealed_during_run=%d seal_backlog_after=%d%s\n",
		*batch, *concurrency, res.entries, res.txs, res.failed, res.sealed, res.backlog, res.cpuSummary())
	fmt.Fprintf(stdout, "ledger entries/s=%.0f p50_ms=%.2f p99_ms=%.2f ceiling_tps=%.0f ratio=%.2f\n",
		res.entriesPerSec, res.p50, res.p99, ceiling, ratio)
	if *prefill <= 0 {
		return nil
	}
	if err := buildJournal(ctx, pool, ledger.New(pool), *prefill, *members, 4, stderr); err != nil {
		return err
	}
	if err := analyze(ctx, pool); err != nil {
		return err
	}
	var postings int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM postings`).Scan(&postings); err != nil {
		return err
	}
	grown, err := benchLedger(ctx, pool, *duration, *concurrency, *batch, *members, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "batch=%d postings_before=%d entries/s=%.0f cpu_us_per_entry=%.0f%s\n", *batch, postings, grown.entriesPerSec, grown.cpuMicros, "")
	fmt.Fprintf(stdout, "flat empty_entries/s=%.0f grown_entries/s=%.0f kept=%.2f\n", res.entriesPerSec, grown.entriesPerSec, grown.entriesPerSec/res.entriesPerSec)
	return nil
}

// benchDatabase parses a bench command's flags, checks them, connects with a connection per writer
// and a few spare, and migrates.
func benchDatabase(ctx context.Context, fs *flag.FlagSet, dbURL *string, args []string, concurrency *int, check func() error) (*pgxpool.Pool, error) {
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := requireDatabase(dbURL); err != nil {
		return nil, err
	}
	if err := check(); err != nil {
		return nil, err
	}
	pool, err := store.Open(ctx, *dbURL, int32(*concurrency+8))
	if err != nil {
		return nil, err
	}
	if _, err := store.Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// benchAccounts creates the member held accounts the benchmark credits, in bulk.
func benchAccounts(ctx context.Context, pool *pgxpool.Pool, n int) error {
	if err := createHeldAccounts(ctx, pool, n, benchMember, money.CNY); err != nil {
		return err
	}
	return analyze(ctx, pool)
}

// warmUp runs the workload for d, unmeasured, then ANALYZE. A fresh database's tables were analyzed
// empty: the first seconds of any workload run on plans made for empty tables (River's job fetch
// among them) until autovacuum analyzes them a minute later, so the measured phase starts from a
// database that has seen the workload.
func warmUp(ctx context.Context, pool *pgxpool.Pool, d time.Duration, stderr io.Writer, run func() error) error {
	if d <= 0 {
		return nil
	}
	fmt.Fprintf(stderr, "bench: warming up for %s (not measured), then ANALYZE\n", d)
	if err := run(); err != nil {
		return err
	}
	return analyze(ctx, pool)
}

// analyze refreshes the planner's statistics after a bulk load, as an import would (autovacuum gets
// there too, minutes later; until then plans are made for empty tables).
func analyze(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, "ANALYZE")
	return err
}

// createHeldAccounts bulk-creates members' held accounts, as an import of existing members would.
func createHeldAccounts(ctx context.Context, pool *pgxpool.Pool, n int, member func(int) string, cur money.Currency) error {
	return createMemberAccounts(ctx, pool, n, member, "held", cur)
}

// createMemberAccounts creates one bucket's account for n members, in bulk.
func createMemberAccounts(ctx context.Context, pool *pgxpool.Pool, n int, member func(int) string, bucket string, cur money.Currency) error {
	q := store.New(pool)
	const chunk = 10_000
	for start := 0; start < n; start += chunk {
		var codes []string
		for i := start; i < min(start+chunk, n); i++ {
			codes = append(codes, ledger.MemberAccount(member(i), bucket))
		}
		if err := q.AccountInsertMany(ctx, sqlc.AccountInsertManyParams{Codes: codes, Currency: string(cur),
			Kind: string(ledger.Liability), AllowNegative: false}); err != nil {
			return fmt.Errorf("create bench accounts: %w", err)
		}
	}
	return nil
}

func benchMember(i int) string { return "bench" + strconv.Itoa(i) }

// benchReleaseArgs stands in for the hold-release job every accrual schedules: one River job
// inserted in the entry's transaction. Nothing works these jobs; the bench deletes them at the end.
type benchReleaseArgs struct {
	EntryKey string `json:"entry_key"`
}

func (benchReleaseArgs) Kind() string { return "bench.release" }

type benchResult struct {
	entries, txs, failed int
	entriesPerSec        float64
	p50, p99             float64
	sealed               int
	backlog              int64
	// cpuMicros is the machine's CPU time per entry in the measured phase (every process: the
	// writers, the sealer, PostgreSQL); steal the hypervisor's share. Throughput on a shared
	// machine moves with its neighbours; CPU per entry much less.
	cpuMicros, steal float64
	cpuKnown         bool
}

func benchLedger(ctx context.Context, pool *pgxpool.Pool, d time.Duration, concurrency, batch, members int, stderr io.Writer) (benchResult, error) {
	l := ledger.New(pool)
	// As `rebate serve` does at start: the run measures a warm process, not its first minutes.
	if _, err := l.WarmCache(ctx, warmAccounts); err != nil {
		return benchResult{}, err
	}
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	if err != nil {
		return benchResult{}, err
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	var (
		mu        sync.Mutex
		latencies []time.Duration
		res       benchResult
		firstErr  error
	)
	// The sealer runs beside the writers every second, as the service's periodic job does.
	sealCtx, stopSeal := context.WithCancel(ctx)
	sealDone := make(chan int)
	go func() {
		total := 0
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-sealCtx.Done():
				sealDone <- total
				return
			case <-tick.C:
				n, _ := l.SealAll(sealCtx)
				total += n
			}
		}
	}()

	fmt.Fprintf(stderr, "bench: posting rebate entries for %s (%d writers, %d per transaction)\n", d, concurrency, batch)
	deadline := time.Now().Add(d)
	start, startCPU := time.Now(), readCPUTicks()
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			var lat []time.Duration
			seq := 0
			entries, txs, failed := 0, 0, 0
			for time.Now().Before(deadline) && ctx.Err() == nil {
				reqs := make([]ledger.EntryRequest, batch)
				for i := range reqs {
					seq++
					reqs[i] = benchEntry(r, fmt.Sprintf("bench-%s-%d-%d", run, w, seq), members)
				}
				t0 := time.Now()
				err := l.Transact(ctx, func(tx pgx.Tx) error {
					jobs := make([]river.InsertManyParams, len(reqs))
					for i, r := range reqs {
						jobs[i] = river.InsertManyParams{Args: benchReleaseArgs{EntryKey: r.Key},
							InsertOpts: &river.InsertOpts{ScheduledAt: r.OccurredAt.Add(168 * time.Hour)}}
					}
					// The entries' statement goes to the server with the job insert, in one
					// round trip (COPY, for many jobs, cannot carry it and goes after it).
					_, err := l.PostManyWith(ctx, tx, reqs, func() error {
						var err error
						if len(jobs) == 1 {
							_, err = rc.InsertTx(ctx, tx, jobs[0].Args, jobs[0].InsertOpts)
						} else {
							_, err = rc.InsertManyFastTx(ctx, tx, jobs)
						}
						return err
					})
					return err
				})
				lat = append(lat, time.Since(t0))
				if err != nil {
					failed++
					if ctx.Err() == nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
					}
					continue
				}
				entries += batch
				txs++
			}
			mu.Lock()
			latencies = append(latencies, lat...)
			res.entries += entries
			res.txs += txs
			res.failed += failed
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed, endCPU := time.Since(start), readCPUTicks()
	res.cpuMicros, res.steal, res.cpuKnown = endCPU.perEntry(startCPU, res.entries)
	stopSeal()
	res.sealed = <-sealDone
	if firstErr != nil {
		return res, fmt.Errorf("bench write failed: %w", firstErr)
	}
	res.backlog, _ = l.Unsealed(ctx)
	res.entriesPerSec = float64(res.entries) / elapsed.Seconds()
	slices.Sort(latencies)
	if len(latencies) > 0 {
		res.p50 = float64(latencies[len(latencies)/2].Microseconds()) / 1000
		res.p99 = float64(latencies[len(latencies)*99/100].Microseconds()) / 1000
	}
	if _, err := pool.Exec(ctx, "DELETE FROM river_job WHERE kind = 'bench.release'"); err != nil {
		return res, err
	}
	return res, nil
}

// cpuSummary is " cpu_us_per_entry=N steal=N%" when the machine's CPU time could be read.
func (r benchResult) cpuSummary() string {
	if !r.cpuKnown {
		return ""
	}
	return fmt.Sprintf(" cpu_us_per_entry=%.1f steal=%.1f%%", r.cpuMicros, 100*r.steal)
}

// benchEntry is rebate-shaped: the hot platform expense pays three different members' held accounts.
func benchEntry(r *rand.Rand, key string, members int) ledger.EntryRequest {
	picked := map[int]bool{}
	req := ledger.EntryRequest{Key: key, Kind: "accrual", OccurredAt: time.Now(), Metadata: map[string]any{"bench": true}}
	total := money.Zero(money.CNY)
	for len(picked) < 3 {
		i := r.IntN(members)
		if picked[i] {
			continue
		}
		picked[i] = true
		// 0.01 to 49.99 (made from cents: parsing text here was the harness's own largest cost)
		a, _ := money.New(decimal.New(int64(r.IntN(50)*100+1+r.IntN(99)), -2), money.CNY)
		total, _ = total.Add(a)
		req.Postings = append(req.Postings, ledger.PostingRequest{Account: ledger.MemberAccount(benchMember(i), "held"), Side: ledger.Credit, Amount: a})
	}
	req.Postings = append(req.Postings, ledger.PostingRequest{Account: ledger.RebateExpense, Side: ledger.Debit, Amount: total})
	return req
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// bracketed measures pgbench's ceiling right before and right after phase and returns their mean:
// the ceiling on a shared 2-core machine drifts by tens of percent within minutes, and a ceiling
// taken on one side only made the ratio swing with it.
func bracketed(ctx context.Context, skip bool, url string, clients int, d time.Duration, stderr io.Writer, phase func() error) (float64, error) {
	if skip {
		return 0, phase()
	}
	fmt.Fprintf(stderr, "bench: PostgreSQL ceiling before (pgbench TPC-B-like, scale 10, %d clients, %s)\n", clients, d)
	before, err := pgbenchCeiling(ctx, url, clients, d, stderr)
	if err != nil {
		return 0, err
	}
	if err := phase(); err != nil {
		return 0, err
	}
	fmt.Fprintf(stderr, "bench: PostgreSQL ceiling after\n")
	after, err := pgbenchCeiling(ctx, url, clients, d, stderr)
	if err != nil {
		return 0, err
	}
	return (before + after) / 2, nil
}

// pgbenchCeiling runs pgbench's built-in TPC-B-like script against the same server and database.
func pgbenchCeiling(ctx context.Context, url string, clients int, d time.Duration, stderr io.Writer) (float64, error) {
	bin, err := findPgbench()
	if err != nil {
		return 0, err
	}
	init := exec.CommandContext(ctx, bin, "-i", "-s", "10", "-q", url)
	init.Stderr = io.Discard
	if out, err := init.Output(); err != nil {
		return 0, fmt.Errorf("pgbench -i: %w: %s", err, out)
	}
	threads := min(clients, 2)
	cmd := exec.CommandContext(ctx, bin, "-c", strconv.Itoa(clients), "-j", strconv.Itoa(threads), "-T", strconv.Itoa(int(d.Seconds())), url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench: %w: %s", err, out)
	}
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench printed no tps line: %s", out)
	}
	fmt.Fprintf(stderr, "bench: pgbench tps = %s\n", m[1])
	return strconv.ParseFloat(string(m[1]), 64)
}

func findPgbench() (string, error) {
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench")
	if len(matches) > 0 {
		slices.Sort(matches)
		return matches[len(matches)-1], nil
	}
	if _, err := os.Stat("/usr/bin/pgbench"); err == nil {
		return "/usr/bin/pgbench", nil
	}
	return "", errors.New("pgbench not found: install the postgresql-contrib or postgresql package, or pass --skip-ceiling")
}

// startCPUProfile writes a Go CPU profile to path until stop is called ("" profiles nothing).
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
