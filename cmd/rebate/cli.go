package main

import (
	"context"
	"errors"
	"flag"
	"io"

	"github.com/spf13/cobra"
)

// newRoot is the command tree. Each leaf parses its own flags with the standard flag package (so
// "rebate serve --help" prints that command's flags and exits 0), and cobra gives the tree its
// help, unknown-command errors and shell completion (rebate completion bash|zsh|fish|powershell).
func newRoot(ctx context.Context, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "rebate",
		Short:         "rebate ledger: the money of shop referral programs, kept as a double-entry journal",
		Long:          "rebate ledger: the money of shop referral programs, kept as a double-entry journal.\n\nEvery command takes --database-url (default: env DATABASE_URL; `make -s db` prints the private cluster's).\nRun \"rebate COMMAND --help\" for a command's flags.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetOut(stderr)
			_ = cmd.Help()
			return errors.New("no command")
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	leaf := func(use, short string, fn func(ctx context.Context, args []string, stdout, stderr io.Writer) error) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, DisableFlagParsing: true, Args: cobra.ArbitraryArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				err := fn(ctx, args, stdout, stderr)
				if errors.Is(err, flag.ErrHelp) {
					return nil // the flags were printed, as asked
				}
				return err
			},
		}
	}
	group := func(use, short string, children ...*cobra.Command) *cobra.Command {
		c := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
		c.AddCommand(children...)
		return c
	}
	migrateCmd := func(ctx context.Context, args []string, _, stderr io.Writer) error { return migrate(ctx, args, stderr) }
	benchOf := func(kind string) func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return bench(ctx, append([]string{kind}, args...), stdout, stderr)
		}
	}
	root.AddCommand(
		leaf("serve", "run the HTTP API and the background workers", serve),
		leaf("migrate", "apply database migrations (ours and River's); safe from two processes at once", migrateCmd),
		group("keys", "manage API keys",
			leaf("create", "create an API key (--role shop|operator|auditor --name NAME) and print it, once, on stdout", keysCreate),
			leaf("list", "list every key's id, name, role and dates as JSON lines (never the key)", keysList),
			leaf("revoke", "revoke a key (--id ID) and the member tokens it issued", keysRevoke),
		),
		leaf("verify", "seal, then recompute every balance and the hash chain; or --file: check an export offline; exit 1 on any difference", verify),
		leaf("demo", "play a simulated shop against a running service (sign-ups, orders, refunds, withdrawals, a campaign) through the generated client", demo),
		leaf("export", "write the sealed journal as jsonl, csv or hledger, with a manifest, verifiable offline", export),
		group("bench", "measure throughput beside pgbench's ceiling (docs/benchmarks.md)",
			leaf("ledger", "journal entries, one or --batch N per transaction", benchOf("ledger")),
			leaf("events", "shop events over HTTP on a 100,000-member forest", benchOf("events")),
			leaf("wallet", "withdrawals over HTTP, then payout results for every item", benchOf("wallet")),
			leaf("export", "build a journal of --postings postings, then time rebate export beside PostgreSQL's COPY", benchOf("export")),
		),
	)
	return root
}
