package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/auth"
	"github.com/rebate-ledger/rebate/internal/pgtest"
	"github.com/rebate-ledger/rebate/internal/store"
)

func TestKeysCreatePrintsTheKeyAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"keys", "create", "--role", "auditor", "--name", "ci", "--database-url", url}, &stdout, &stderr)
	require.NoError(t, err, stderr.String())
	lines := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
	require.Len(t, lines, 1)
	pool, err := store.Open(ctx, url, 2)
	require.NoError(t, err)
	defer pool.Close()
	p, err := auth.Lookup(ctx, pool, lines[0])
	require.NoError(t, err)
	require.Equal(t, auth.Auditor, p.Role)
	require.Equal(t, "ci", p.Name)

	err = run(ctx, []string{"keys", "create", "--role", "root", "--name", "x", "--database-url", url}, &stdout, &stderr)
	require.ErrorContains(t, err, "unknown role")
}

func TestMigrateThenVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.EmptyDatabase(t)
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(ctx, []string{"migrate", "--database-url", url}, &stdout, &stderr))
	require.Contains(t, stderr.String(), "applied 0001_ledger")
	stderr.Reset()
	require.NoError(t, run(ctx, []string{"migrate", "--database-url", url}, &stdout, &stderr))
	require.Contains(t, stderr.String(), "up to date")
	require.NoError(t, run(ctx, []string{"verify", "--database-url", url}, &stdout, &stderr))
	require.Contains(t, stdout.String(), `"problems": null`)
}

func TestCommandErrors(t *testing.T) { // not parallel: it sets the environment
	var stdout, stderr bytes.Buffer
	ctx := context.Background()
	require.ErrorContains(t, run(ctx, nil, &stdout, &stderr), "no command")
	require.ErrorContains(t, run(ctx, []string{"frobnicate"}, &stdout, &stderr), "unknown command")
	t.Setenv("DATABASE_URL", "")
	require.ErrorContains(t, run(ctx, []string{"serve"}, &stdout, &stderr), "no database")
	require.ErrorContains(t, run(ctx, []string{"serve", "--database-url", "postgres://x", "--mode", "both"}, &stdout, &stderr), "--mode")
	require.ErrorContains(t, run(ctx, []string{"bench", "ledger", "--database-url", "postgres://x", "--batch", "0"}, &stdout, &stderr), "--batch")
}
