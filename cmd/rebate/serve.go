package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"riverqueue.com/riverui"

	"github.com/rebate-ledger/rebate/internal/audit"
	"github.com/rebate-ledger/rebate/internal/auth"
	"github.com/rebate-ledger/rebate/internal/campaign"
	"github.com/rebate-ledger/rebate/internal/console"
	"github.com/rebate-ledger/rebate/internal/httpapi"
	"github.com/rebate-ledger/rebate/internal/jobs"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/notify"
	"github.com/rebate-ledger/rebate/internal/rebate"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/wallet"
	"github.com/rebate-ledger/rebate/internal/wallet/csvbank"
	"github.com/rebate-ledger/rebate/internal/wallet/simulated"
)

// warmAccounts is how many of the newest accounts a process caches at start (~200 bytes each).
const warmAccounts = 500_000

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	dbURL := databaseFlag(fs)
	addr := fs.String("addr", envOr("REBATE_ADDR", "127.0.0.1:8080"), "listen address (env REBATE_ADDR)")
	mode := fs.String("mode", envOr("REBATE_MODE", "all"), "what this process runs: all, api (HTTP only) or worker (River only) (env REBATE_MODE)")
	doMigrate := fs.Bool("migrate", envBool("REBATE_MIGRATE", false), "apply migrations before serving (env REBATE_MIGRATE)")
	demo := fs.Bool("demo", envBool("REBATE_DEMO", false), "create and print a shop, an operator and an auditor key (env REBATE_DEMO)")
	maxConns := fs.Int("db-max-conns", envInt("REBATE_DB_MAX_CONNS", 20), "database pool size (env REBATE_DB_MAX_CONNS)")
	bodyLimit := fs.String("body-limit", envOr("REBATE_BODY_LIMIT", "1M"), "largest request body, e.g. 1M (env REBATE_BODY_LIMIT)")
	reqTimeout := fs.Duration("request-timeout", 30*time.Second, "per-request handler timeout")
	keyCacheTTL := fs.Duration("key-cache-ttl", 5*time.Second, "how long a found API key is trusted without a database lookup (a revoked key works that much longer); 0 looks up every request")
	shutdownTimeout := fs.Duration("shutdown-timeout", 20*time.Second, "how long to drain requests and jobs on SIGTERM")
	sealEvery := fs.Duration("seal-every", time.Second, "how often the sealing job runs")
	coalesceWorkers := fs.Int("coalesce-workers", envInt("REBATE_COALESCE_WORKERS", 4),
		"transactions applying concurrent single events together, and as many deciding concurrent withdrawal requests together; 0 gives each its own (env REBATE_COALESCE_WORKERS)")
	coalesceMax := fs.Int("coalesce-max", envInt("REBATE_COALESCE_MAX", 64), "most single events (or withdrawal requests) one such transaction takes (env REBATE_COALESCE_MAX)")
	logFormat := fs.String("log-format", envOr("REBATE_LOG_FORMAT", "json"), "json or text (env REBATE_LOG_FORMAT)")
	payoutProvider := fs.String("payout-provider", envOr("REBATE_PAYOUT_PROVIDER", "csv"),
		"csv (a bank file the operator downloads, results posted back) or simulated (SIMULATED: pays every item itself after --simulated-delay, fails accounts containing FAIL; moves no real money) (env REBATE_PAYOUT_PROVIDER)")
	payoutEvery := fs.Duration("payout-every", time.Hour, "how often approved withdrawals are cut into payout batches; 0 turns the periodic cut off")
	payoutBatchMax := fs.Int("payout-batch-max", 5000, "most withdrawals in one payout batch")
	rateLimit := fs.Float64("rate-limit", envFloat("REBATE_RATE_LIMIT", 1000), "requests per second per API key or member token; 0 turns the limit off (env REBATE_RATE_LIMIT)")
	rateBurst := fs.Int("rate-burst", envInt("REBATE_RATE_BURST", 2000), "requests a key may send at once above its rate (env REBATE_RATE_BURST)")
	checkEvery := fs.Duration("check-every", 10*time.Second, "how often the continuous checker runs over what was sealed since its last run")
	simulatedDelay := fs.Duration("simulated-delay", 2*time.Second, "how long the simulated provider takes to report results")
	webhookEvery := fs.Duration("webhook-every", time.Second, "how often due webhook deliveries are sent")
	webhookTimeout := fs.Duration("webhook-timeout", 10*time.Second, "how long one webhook delivery attempt may take")
	consoleInsecure := fs.Bool("console-insecure-cookie", envBool("REBATE_CONSOLE_INSECURE_COOKIE", false),
		"send the console's session cookie without the Secure flag: only for plain http on this machine (env REBATE_CONSOLE_INSECURE_COOKIE)")
	webhookRetention := fs.Duration("webhook-retention", 30*24*time.Hour, "how long delivered, dead and cancelled webhook deliveries are kept (pending ones always are)")
	webhookAllowLocal := fs.Bool("webhook-allow-local", envBool("REBATE_WEBHOOK_ALLOW_LOCAL", false),
		"let webhook endpoints be plain http and on loopback, private and link-local addresses (local development only) (env REBATE_WEBHOOK_ALLOW_LOCAL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := requireDatabase(dbURL); err != nil {
		return err
	}
	if *mode != "all" && *mode != "api" && *mode != "worker" {
		return fmt.Errorf("--mode must be all, api or worker, not %q", *mode)
	}
	log := newLogger(stderr, *logFormat)

	pool, err := store.Open(ctx, *dbURL, int32(*maxConns))
	if err != nil {
		return err
	}
	defer pool.Close()
	if *doMigrate {
		applied, err := store.Migrate(ctx, pool)
		if err != nil {
			return err
		}
		log.Info("migrations applied", "new", applied)
	}
	warnSettings(ctx, pool, log)
	var owner bool
	if err := pool.QueryRow(ctx, `SELECT has_table_privilege('entries', 'UPDATE') OR has_table_privilege('entries', 'TRUNCATE')`).Scan(&owner); err == nil && owner {
		log.Warn("serving with rights that can change the journal (its owner or a superuser): run serve as the serving role (docs/operations.md, Roles)")
	}
	l := ledger.New(pool)
	go func() {
		// In the background: requests are served meanwhile, looking up what is not cached yet.
		if n, err := l.WarmCache(ctx, warmAccounts); err != nil {
			log.Warn("account cache not warmed", "err", err)
		} else {
			log.Info("account cache warmed", "accounts", n)
		}
	}()

	runWorkers := *mode != "api"
	engine := rebate.NewEngine(pool, l)
	if *coalesceWorkers > 0 && *mode != "worker" {
		stop := engine.Coalesce(*coalesceWorkers, *coalesceMax)
		defer stop() // after the HTTP server has drained: queued events are applied, not dropped
	}
	var provider wallet.Provider
	var sim *simulated.Provider
	switch *payoutProvider {
	case "csv":
		provider = csvbank.Provider{}
	case "simulated":
		sim = simulated.New(*simulatedDelay)
		provider = sim
		log.Warn("payouts go to the SIMULATED provider: no real money moves")
	default:
		return fmt.Errorf("--payout-provider must be csv or simulated, not %q", *payoutProvider)
	}
	if *payoutBatchMax < 1 || *payoutBatchMax > 100_000 {
		return fmt.Errorf("--payout-batch-max must be 1 to 100000, not %d", *payoutBatchMax)
	}
	wal := wallet.New(pool, l, provider)
	if *coalesceWorkers > 0 && *mode != "worker" {
		stop := wal.Coalesce(*coalesceWorkers, *coalesceMax)
		defer stop() // after the HTTP server has drained, as for events
	}
	if *webhookAllowLocal {
		log.Warn("webhooks may go to plain http and local addresses (--webhook-allow-local): for development only")
	}
	dispatcher := notify.NewDispatcher(pool, notify.Options{Timeout: *webhookTimeout, AllowLocal: *webhookAllowLocal, Logger: log})
	camps := campaign.New(pool, l)
	hooks := notify.NewWebhooks(pool, nil, *webhookAllowLocal)
	rc, err := jobs.NewClient(pool, l, engine, jobs.Config{Workers: runWorkers, SealEvery: *sealEvery, Logger: log, Campaigns: camps,
		Wallet: wal, Simulated: sim, PayoutEvery: *payoutEvery, PayoutBatchMax: *payoutBatchMax,
		Checker: audit.NewChecker(pool), CheckEvery: *checkEvery, Webhooks: dispatcher, WebhookEvery: *webhookEvery, WebhookRetention: *webhookRetention})
	if err != nil {
		return err
	}
	var workersUp atomic.Bool
	if runWorkers {
		if err := rc.Start(ctx); err != nil {
			return fmt.Errorf("start workers: %w", err)
		}
		workersUp.Store(true)
		log.Info("workers started")
	}

	// River's UI for operators, at /riverui on processes that serve HTTP (its own background work
	// starts with it).
	var ui http.Handler
	if *mode != "worker" {
		h, err := riverui.NewHandler(&riverui.HandlerOpts{Endpoints: riverui.NewEndpoints(rc, nil), Logger: log, Prefix: "/riverui"})
		if err != nil {
			return fmt.Errorf("river UI: %w", err)
		}
		if err := h.Start(ctx); err != nil {
			return fmt.Errorf("start the river UI: %w", err)
		}
		ui = h
	}

	var keys map[auth.Role]string
	if *demo {
		if keys, err = demoKeys(ctx, pool); err != nil {
			return err
		}
		if *mode == "worker" {
			printDemo(stdout, "", keys)
		}
	}

	var srv *http.Server
	serveErr := make(chan error, 1)
	if *mode != "worker" {
		e := httpapi.New(httpapi.Config{
			Pool: pool, Ledger: l, Engine: engine, Wallet: wal, Webhooks: hooks, Campaigns: camps, RiverUI: ui, PayoutBatchMax: *payoutBatchMax, Logger: log, RateLimit: *rateLimit, RateBurst: *rateBurst, BodyLimit: *bodyLimit, RequestTimeout: *reqTimeout, KeyCacheTTL: *keyCacheTTL,
			ConsoleRole: func(r *http.Request) (auth.Role, error) {
				sess, err := console.SessionOf(r.Context(), pool, r, time.Now())
				return sess.Role, err
			},
			Ready: func(context.Context) error {
				if runWorkers && !workersUp.Load() {
					return errors.New("River workers are not running")
				}
				return nil
			},
		})
		console.Register(e, console.Config{Pool: pool, Wallet: wal, Logger: log, MaxBatch: *payoutBatchMax, Insecure: *consoleInsecure,
			Engine: engine, Webhooks: hooks, Campaigns: camps})
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", *addr, err)
		}
		srv = &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute}
		log.Info("serving", "addr", ln.Addr().String(), "mode", *mode)
		go func() { serveErr <- srv.Serve(ln) }()
		if *demo {
			printDemo(stdout, ln.Addr().String(), keys)
			go func() {
				if err := runDemo(ctx, "http://"+ln.Addr().String(), keys, *payoutProvider == "simulated", stdout); err != nil {
					fmt.Fprintf(stdout, "demo: stopped: %v\n", err)
				}
			}()
		}
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), *shutdownTimeout)
	defer cancel()
	if srv != nil {
		if err := srv.Shutdown(shutCtx); err != nil {
			log.Error("http shutdown", "err", err)
		}
	}
	if runWorkers {
		workersUp.Store(false)
		if err := rc.Stop(shutCtx); err != nil {
			log.Error("workers shutdown", "err", err)
		}
	}
	return nil
}

// demoKeys creates a shop, an operator and an auditor key for the demo.
func demoKeys(ctx context.Context, db store.DBTX) (map[auth.Role]string, error) {
	keys := map[auth.Role]string{}
	for _, r := range []auth.Role{auth.Shop, auth.Operator, auth.Auditor} {
		key, err := auth.CreateKey(ctx, db, r, "demo-"+string(r))
		if err != nil {
			return nil, err
		}
		keys[r] = key
	}
	return keys, nil
}

// printDemo prints the demo's keys and, when the process serves HTTP (addr is where it listens),
// the address and requests to try.
func printDemo(w io.Writer, addr string, keys map[auth.Role]string) {
	if addr != "" {
		fmt.Fprintf(w, "\nrebate ledger demo: listening on http://%s\n", addr)
	}
	for _, r := range []auth.Role{auth.Shop, auth.Operator, auth.Auditor} {
		fmt.Fprintf(w, "  %-8s key: %s\n", r, keys[r])
	}
	if addr != "" {
		fmt.Fprintf(w, "\ntry:\n  curl -s -H 'Authorization: Bearer %s' http://%s/v1/reports/trial-balance\n", keys[auth.Auditor], addr)
		fmt.Fprintf(w, "  curl -s http://%s/readyz\n\n", addr)
	}
}

// warnSettings logs a warning for each database setting below what docs/operations.md asks for:
// the journal's write path slows as it grows when its indexes no longer fit the buffer cache
// (shared_buffers: at least 512MB, and at least the postings' and entries' write-path indexes with a
// quarter to spare) or when checkpoints come too often (max_wal_size).
func warnSettings(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) {
	var buffers, indexes int64
	var shown string
	err := pool.QueryRow(ctx, `SELECT pg_size_bytes(current_setting('shared_buffers')), current_setting('shared_buffers'),
		coalesce(pg_relation_size(to_regclass('postings_account_recorded_idx')), 0) + coalesce(pg_relation_size(to_regclass('postings_pkey')), 0)
		  + coalesce(pg_relation_size(to_regclass('entries_idempotency_key_key')), 0)`).Scan(&buffers, &shown, &indexes)
	if want := max(int64(512<<20), indexes*5/4); err == nil && buffers < want {
		log.Warn("shared_buffers is below what the journal's indexes need to stay in memory (docs/operations.md)",
			"shared_buffers", shown, "want_at_least_mb", want>>20, "journal_indexes_mb", indexes>>20)
	}
	var wal int64
	if err := pool.QueryRow(ctx, `SELECT pg_size_bytes(current_setting('max_wal_size')), current_setting('max_wal_size')`).Scan(&wal, &shown); err == nil && wal < 4<<30 {
		log.Warn("max_wal_size is below what the journal's write path needs (docs/operations.md)", "max_wal_size", shown, "want_at_least", "4GB")
	}
}
