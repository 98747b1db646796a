package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/auth"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
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

// TestKeysListAndRevoke: list shows every key without the key itself; revoke takes an id, refuses
// a missing or unknown one, and the revoked key stops working.
func TestKeysListAndRevoke(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	var stdout, stderr bytes.Buffer
	var created []string
	for _, name := range []string{"shop-a", "audit-b"} {
		stdout.Reset()
		role := map[string]string{"shop-a": "shop", "audit-b": "auditor"}[name]
		require.NoError(t, run(ctx, []string{"keys", "create", "--role", role, "--name", name, "--database-url", url}, &stdout, &stderr), stderr.String())
		created = append(created, strings.TrimSpace(stdout.String()))
	}

	stdout.Reset()
	require.NoError(t, run(ctx, []string{"keys", "list", "--database-url", url}, &stdout, &stderr), stderr.String())
	lines := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
	require.Len(t, lines, 2)
	var first auth.KeyInfo
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	require.Equal(t, "shop-a", first.Name)
	require.Equal(t, auth.Shop, first.Role)
	require.Nil(t, first.RevokedAt)
	for _, key := range created {
		require.NotContains(t, stdout.String(), key)
	}

	require.ErrorContains(t, run(ctx, []string{"keys", "revoke", "--database-url", url}, &stdout, &stderr), "--id is required")
	require.ErrorContains(t, run(ctx, []string{"keys", "revoke", "--database-url", "postgres://nowhere.invalid/x"}, &stdout, &stderr), "--id is required",
		"the flag is checked before connecting")
	require.ErrorIs(t, run(ctx, []string{"keys", "revoke", "--id", "999999", "--database-url", url}, &stdout, &stderr), auth.ErrNoSuchKey)
	stdout.Reset()
	require.NoError(t, run(ctx, []string{"keys", "revoke", "--id", strconv.FormatInt(first.ID, 10), "--database-url", url}, &stdout, &stderr))
	var revoked auth.KeyInfo
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &revoked))
	require.NotNil(t, revoked.RevokedAt)

	pool, err := store.Open(ctx, url, 2)
	require.NoError(t, err)
	defer pool.Close()
	_, err = auth.Lookup(ctx, pool, created[0])
	require.ErrorIs(t, err, auth.ErrUnknownKey)
	_, err = auth.Lookup(ctx, pool, created[1])
	require.NoError(t, err)
	require.ErrorContains(t, run(ctx, []string{"keys", "rotate"}, &stdout, &stderr), `unknown command "rotate" for "rebate keys"`)
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
	require.Contains(t, stdout.String(), "nothing sealed since the last check", "incremental by default")
	stdout.Reset()
	require.NoError(t, run(ctx, []string{"verify", "--full", "--database-url", url}, &stdout, &stderr))
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

// TestHelpIsConsistent: every command is listed, --help exits 0 everywhere, the database URL from
// the environment is never printed as a default, and a missing database says how to get one.
func TestHelpIsConsistent(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://someone:secret@db.example/prod")
	ctx := context.Background()
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(ctx, []string{"--help"}, &stdout, &stderr))
	for _, c := range []string{"serve", "migrate", "keys", "verify", "bench", "completion"} {
		require.Contains(t, stdout.String(), "\n  "+c+" ", c)
	}
	for _, path := range [][]string{{"keys"}, {"bench"}} {
		stdout.Reset()
		require.NoError(t, run(ctx, append(path, "--help"), &stdout, &stderr))
		for _, c := range map[string][]string{"keys": {"create", "list", "revoke"}, "bench": {"ledger", "events", "wallet"}}[path[0]] {
			require.Contains(t, stdout.String(), "\n  "+c+" ", c)
		}
	}
	for _, cmd := range [][]string{{"serve"}, {"migrate"}, {"verify"}, {"keys", "create"}, {"keys", "list"}, {"keys", "revoke"},
		{"bench", "ledger"}, {"bench", "events"}, {"bench", "wallet"}} {
		stdout.Reset()
		stderr.Reset()
		require.NoError(t, run(ctx, append(cmd, "--help"), &stdout, &stderr), cmd)
		require.Contains(t, stderr.String(), "database-url", cmd)
		require.NotContains(t, stderr.String()+stdout.String(), "secret", cmd)
	}
	require.ErrorContains(t, run(ctx, []string{"bogus"}, &stdout, &stderr), `unknown command "bogus"`)
	t.Setenv("DATABASE_URL", "")
	require.ErrorContains(t, run(ctx, []string{"migrate"}, &stdout, &stderr), "make -s db")
	stdout.Reset()
	require.NoError(t, run(ctx, []string{"completion", "bash"}, &stdout, &stderr))
	require.Contains(t, stdout.String(), "bash completion")
}

// TestExportAndVerifyFile: rebate export writes the file and its manifest; rebate verify --file
// checks them with no database, and names the line of a tampered copy.
func TestExportAndVerifyFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	pool, err := store.Open(ctx, url, 2)
	require.NoError(t, err)
	defer pool.Close()
	l := ledger.New(pool)
	for i := range 5 {
		a := money.MustParse("1.00", money.CNY)
		_, err := l.PostTx(ctx, ledger.EntryRequest{Key: "k" + strconv.Itoa(i), Kind: "accrual", OccurredAt: time.Now(),
			Postings: []ledger.PostingRequest{{Account: ledger.RebateExpense, Side: ledger.Debit, Amount: a},
				{Account: ledger.MemberAccount("m", "held"), Side: ledger.Credit, Amount: a}}})
		require.NoError(t, err)
	}
	var stdout, stderr bytes.Buffer
	require.Eventually(t, func() bool {
		stdout.Reset()
		// --full: these entries credit held with no rebate lots behind them, which the incremental
		// check (held against lots) would rightly report.
		require.NoError(t, run(ctx, []string{"verify", "--full", "--database-url", url}, &stdout, &stderr), stderr.String())
		n, err := l.Unsealed(ctx)
		require.NoError(t, err)
		return n == 0
	}, 30*time.Second, 50*time.Millisecond)
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	require.NoError(t, run(ctx, []string{"export", "--database-url", url, "--out", path}, &stdout, &stderr), stderr.String())
	require.Contains(t, stderr.String(), "5 entries")
	man, err := os.ReadFile(path + ".manifest.json")
	require.NoError(t, err)
	require.Contains(t, string(man), `"sha256"`)

	stdout.Reset()
	require.NoError(t, run(ctx, []string{"verify", "--file", path}, &stdout, &stderr), stdout.String())
	require.Contains(t, stdout.String(), `"ok": true`)
	require.Contains(t, stdout.String(), path+".manifest.json", "the manifest beside the file is used")

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	tampered := filepath.Join(t.TempDir(), "tampered.jsonl")
	require.NoError(t, os.WriteFile(tampered, bytes.Replace(b, []byte(`"amount":"1.00"`), []byte(`"amount":"9.00"`), 1), 0o600))
	stdout.Reset()
	err = run(ctx, []string{"verify", "--file", tampered, "--manifest", path + ".manifest.json"}, &stdout, &stderr)
	require.ErrorContains(t, err, "line 1")
	require.Contains(t, stdout.String(), `"ok": false`)
}
