package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rebate-ledger/rebate/internal/shopsim"
)

// demo plays a simulated shop against a running service (internal/shopsim), through the client
// generated from docs/openapi.yaml, and prints a summary.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	url := fs.String("url", envOr("REBATE_URL", "http://127.0.0.1:8080"), "the running service (env REBATE_URL)")
	shop := fs.String("shop-key", os.Getenv("REBATE_SHOP_KEY"), "a shop key (env REBATE_SHOP_KEY)")
	operator := fs.String("operator-key", os.Getenv("REBATE_OPERATOR_KEY"), "an operator key (env REBATE_OPERATOR_KEY)")
	auditor := fs.String("auditor-key", os.Getenv("REBATE_AUDITOR_KEY"), "an auditor key (env REBATE_AUDITOR_KEY)")
	members := fs.Int("members", 1000, "members who sign up")
	days := fs.Int("days", 7, "days of orders, ending now, after the program's hold period (so the first are released)")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "random seed")
	campaign := fs.Duration("campaign", 20*time.Second, "how long the demo's sign-up campaign runs")
	quiet := fs.Bool("quiet", false, "no progress bars")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *shop == "" || *operator == "" || *auditor == "" {
		return errors.New("demo needs --shop-key, --operator-key and --auditor-key (make demo creates them)")
	}
	cfg := shopsim.Config{URL: *url, ShopKey: *shop, OperatorKey: *operator, AuditorKey: *auditor, Members: *members, Days: *days,
		Seed: *seed, Log: stderr, Progress: stderr, CampaignFor: *campaign}
	if *quiet {
		cfg.Progress = nil
	}
	start := time.Now()
	sum, err := shopsim.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nsimulated shop %s: done in %s\n", sum.RunID, time.Since(start).Round(time.Second))
	fmt.Fprintf(stdout, "  members:      %d signed up\n", sum.Members)
	fmt.Fprintf(stdout, "  orders:       %d, GMV %s %s; %d refunds (%d sent before their orders), %d events sent twice (replayed)\n",
		sum.Orders, sum.GMV.StringFixed(2), sum.Currency, sum.Refunds, sum.ParkedRefunds, sum.Replays)
	fmt.Fprintf(stdout, "  rewards:      granted %s, clawed back %s %s (all time, income statement)\n", sum.RewardsGranted, sum.RewardsClawed, sum.Currency)
	fmt.Fprintf(stdout, "  points:       %d redemptions\n", sum.Redemptions)
	fmt.Fprintf(stdout, "  withdrawals:  %d requested, %d approved and %d rejected in review, %d paid (net %s %s) in batch %s\n",
		sum.Withdrawals, sum.Approved, sum.Rejected, sum.Paid, sum.PaidNet.StringFixed(2), sum.Currency, sum.BatchID)
	fmt.Fprintf(stdout, "  campaign:     %s\n", sum.CampaignID)
	for _, w := range sum.CampaignWinners {
		fmt.Fprintf(stdout, "                %s\n", w)
	}
	fmt.Fprintf(stdout, "  checker:      %s (checked the chain to seq %d)\n", sum.CheckerStatus, sum.CheckerCheckedTo)
	return nil
}
