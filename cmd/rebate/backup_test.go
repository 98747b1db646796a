package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/pgtest"
	"github.com/rebate-ledger/rebate/internal/store"
)

func pgTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	require.NotEmpty(t, matches, "%s not found: install PostgreSQL's client programs", name)
	return matches[len(matches)-1]
}

// TestBackupAndRestore: a pg_dump of a live database, restored into a new one as docs/operations.md
// says, verifies and exports byte for byte what the original does.
func TestBackupAndRestore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := pgtest.NewDatabase(t)
	pool, err := store.Open(ctx, src, 4)
	require.NoError(t, err)
	defer pool.Close()
	l := ledger.New(pool)
	for i := range 50 {
		a := money.MustParse(strconv.Itoa(1+i)+".25", money.CNY)
		_, err := l.PostTx(ctx, ledger.EntryRequest{Key: "k" + strconv.Itoa(i), Kind: "accrual", OccurredAt: time.Now(),
			Postings: []ledger.PostingRequest{{Account: ledger.RebateExpense, Side: ledger.Debit, Amount: a},
				{Account: ledger.MemberAccount("m"+strconv.Itoa(i%7), "available"), Side: ledger.Credit, Amount: a}}})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		_, err := l.SealAll(ctx)
		require.NoError(t, err)
		n, err := l.Unsealed(ctx)
		require.NoError(t, err)
		return n == 0
	}, 30*time.Second, 20*time.Millisecond)

	dump := filepath.Join(t.TempDir(), "rebate.dump")
	out, err := exec.Command(pgTool(t, "pg_dump"), "--format=custom", "--file="+dump, "--dbname="+src).CombinedOutput()
	require.NoError(t, err, "pg_dump: %s", out)
	dst := pgtest.EmptyDatabase(t)
	out, err = exec.Command(pgTool(t, "pg_restore"), "--no-owner", "--disable-triggers", "--exit-on-error", "--dbname="+dst, dump).CombinedOutput()
	require.NoError(t, err, "pg_restore: %s", out)

	var stdout, stderr bytes.Buffer
	require.NoError(t, run(ctx, []string{"verify", "--full", "--seal=false", "--database-url", dst}, &stdout, &stderr), stdout.String())
	require.Contains(t, stdout.String(), `"problems": null`)
	exports := map[string][]byte{}
	for name, url := range map[string]string{"source": src, "restored": dst} {
		path := filepath.Join(t.TempDir(), name+".jsonl")
		require.NoError(t, run(ctx, []string{"export", "--database-url", url, "--out", path}, &stdout, &stderr), stderr.String())
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		exports[name] = b
	}
	require.Equal(t, exports["source"], exports["restored"])
	require.NotEmpty(t, exports["source"])
}
