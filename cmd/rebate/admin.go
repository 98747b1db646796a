package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/rebate-ledger/rebate/internal/auth"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/store"
)

func migrate(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("migrate", stderr)
	pool, err := parseAndOpen(ctx, fs, databaseFlag(fs), args, 4)
	if err != nil {
		return err
	}
	defer pool.Close()
	applied, err := store.Migrate(ctx, pool)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stderr, "migrate: schema is up to date")
	}
	for _, v := range applied {
		fmt.Fprintln(stderr, "migrate: applied", v)
	}
	return nil
}

func keys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New(`usage: rebate keys create --role shop|operator|auditor --name NAME`)
	}
	fs := newFlags("keys create", stderr)
	dbURL := databaseFlag(fs)
	role := fs.String("role", "", "shop, operator or auditor")
	name := fs.String("name", "", "who the key is for")
	pool, err := parseAndOpen(ctx, fs, dbURL, args[1:], 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	r, err := auth.ParseRole(*role)
	if err != nil {
		return err
	}
	key, err := auth.CreateKey(ctx, pool, r, *name)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, key)
	return nil
}

func verify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", stderr)
	dbURL := databaseFlag(fs)
	seal := fs.Bool("seal", true, "seal committed entries first, so the chain covers them")
	pool, err := parseAndOpen(ctx, fs, dbURL, args, 4)
	if err != nil {
		return err
	}
	defer pool.Close()
	l := ledger.New(pool)
	if *seal {
		if _, err := l.SealAll(ctx); err != nil {
			return err
		}
	}
	rep, err := l.Verify(ctx)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("verify found %d problems", len(rep.Problems))
	}
	return nil
}
