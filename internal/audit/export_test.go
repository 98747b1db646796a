package audit_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/audit"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/pgtest"
)

// journal writes a small journal in three currencies (rebates, a release, a clawback into debt,
// points, a payout with a fee) and seals it.
func journal(t *testing.T) (*pgxpool.Pool, *ledger.Ledger) {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.New(t)
	l := ledger.New(pool)
	at := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	post := func(key, kind string, meta map[string]any, ps ...ledger.PostingRequest) {
		t.Helper()
		_, err := l.PostTx(ctx, ledger.EntryRequest{Key: key, Kind: kind, OccurredAt: at, Metadata: meta, Postings: ps,
			AllowOverdraft: []string{ledger.MemberAccount("u2", "available")}})
		require.NoError(t, err)
		at = at.Add(time.Hour)
	}
	cny := func(s string) money.Amount { return money.MustParse(s, money.CNY) }
	p := func(acct string, side ledger.Side, a money.Amount) ledger.PostingRequest {
		return ledger.PostingRequest{Account: acct, Side: side, Amount: a}
	}
	for i := range 30 {
		m := fmt.Sprintf("u%d", i%4)
		post(fmt.Sprintf("accrual:o%d", i), "accrual", map[string]any{"order_id": fmt.Sprintf("o%d", i), "note": `quote " and ; semicolon, 中文`},
			p(ledger.RebateExpense, ledger.Debit, cny("12.34")), p(ledger.MemberAccount(m, "held"), ledger.Credit, cny("12.34")))
	}
	post("release:o1", "release", nil, p(ledger.MemberAccount("u1", "held"), ledger.Debit, cny("12.34")), p(ledger.MemberAccount("u1", "available"), ledger.Credit, cny("12.34")))
	post("claw:o2", "clawback", nil, p(ledger.MemberAccount("u2", "available"), ledger.Debit, cny("3.00")), p(ledger.RebateExpense, ledger.Credit, cny("3.00")))
	post("pts;1|x", "accrual", nil, p(ledger.RebateExpense, ledger.Debit, money.MustParse("150", money.PTS)), p(ledger.MemberAccount("u3", "held"), ledger.Credit, money.MustParse("150", money.PTS)))
	post("jpy", "accrual", nil, p(ledger.RebateExpense, ledger.Debit, money.MustParse("1500", money.JPY)), p(ledger.MemberAccount("u0", "held"), ledger.Credit, money.MustParse("1500", money.JPY)))
	post("withdrawal:w1", "withdrawal", nil, p(ledger.MemberAccount("u1", "available"), ledger.Debit, cny("12.34")), p(ledger.MemberAccount("u1", "withdrawing"), ledger.Credit, cny("12.34")))
	post("payout:w1", "payout", nil, p(ledger.MemberAccount("u1", "withdrawing"), ledger.Debit, cny("12.34")), p(ledger.Cash, ledger.Credit, cny("11.34")), p(ledger.FeeIncome, ledger.Credit, cny("1.00")))
	// Sealing waits for every older transaction of the cluster (other tests' too) to end, so it may
	// take a few rounds to cover this journal.
	require.Eventually(t, func() bool {
		_, err := l.SealAll(ctx)
		require.NoError(t, err)
		n, err := l.Unsealed(ctx)
		require.NoError(t, err)
		return n == 0
	}, 30*time.Second, 20*time.Millisecond)
	return pool, l
}

func export(t *testing.T, pool *pgxpool.Pool, f audit.Format, rng audit.Range) ([]byte, audit.Summary) {
	t.Helper()
	var buf bytes.Buffer
	sum, err := audit.Export(context.Background(), pool, &buf, f, rng, nil)
	require.NoError(t, err)
	return buf.Bytes(), sum
}

func TestJSONLExportVerifiesOfflineAndRefusesTampering(t *testing.T) {
	t.Parallel()
	pool, _ := journal(t)
	file, sum := export(t, pool, audit.JSONL, audit.Range{})
	require.EqualValues(t, 36, sum.Entries)
	require.EqualValues(t, 73, sum.Postings)
	require.EqualValues(t, 1, sum.FromSeq)
	require.EqualValues(t, 36, sum.ToSeq)
	// 30 accruals of 12.34, a release, a withdrawal and a payout of 12.34, a clawback of 3.00.
	require.Equal(t, audit.Sums{Debit: "410.22", Credit: "410.22"}, sum.Sums["CNY"])
	require.Equal(t, audit.Sums{Debit: "150", Credit: "150"}, sum.Sums["PTS"])
	require.Equal(t, strings.Repeat("0", 64), sum.StartPrevHash)

	rep, err := audit.VerifyFile(bytes.NewReader(file), nil)
	require.NoError(t, err)
	require.EqualValues(t, 36, rep.Entries)
	m := &audit.Manifest{Summary: sum, SHA256: rep.SHA256}
	_, err = audit.VerifyFile(bytes.NewReader(file), m)
	require.NoError(t, err)

	lines := strings.SplitAfter(string(file), "\n")
	lines = lines[:len(lines)-1] // the split leaves an empty tail
	join := func(ls []string) []byte { return []byte(strings.Join(ls, "")) }
	edit := func(i int, from, to string) []byte {
		c := append([]string(nil), lines...)
		require.Contains(t, c[i], from)
		c[i] = strings.Replace(c[i], from, to, 1)
		return join(c)
	}
	swapped := append([]string(nil), lines...)
	swapped[4], swapped[5] = swapped[5], swapped[4]
	for name, tc := range map[string]struct {
		file []byte
		want string
	}{
		"AmountChanged":  {edit(3, `"amount":"12.34"`, `"amount":"12.35"`), "line 4: seq 4: the entry's hash"},
		"LineRemoved":    {join(append(append([]string(nil), lines[:7]...), lines[8:]...)), "line 8: seq 9 follows seq 7"},
		"LinesSwapped":   {join(swapped), "line 5: seq 6 follows seq 4"},
		"TrailerEdited":  {edit(len(lines)-1, `"entries":36`, `"entries":35`), "line 37: the trailer says"},
		"CutShort":       {join(lines[:20]), "line 21: the trailer is missing"},
		"HashRewritten":  {edit(2, `"prev_hash":"`, `"prev_hash":"f`), "line 3: prev_hash and hash must be 64 hex digits"},
		"LineAfterEnd":   {append(append([]byte(nil), file...), lines[0]...), "line 38: a line after the trailer"},
		"NotJSON":        {edit(10, `{"seq"`, `{seq`), "line 11: not a JSON object"},
		"UnbalancedSafe": {edit(0, `"side":"debit"`, `"side":"credit"`), "line 1: seq 1: the entry's hash"},
	} {
		_, err := audit.VerifyFile(bytes.NewReader(tc.file), nil)
		require.ErrorIs(t, err, audit.ErrTampered, name)
		require.ErrorContains(t, err, tc.want, name)
	}
	// The file untouched but the manifest not its own.
	bad := *m
	bad.SHA256 = strings.Repeat("a", 64)
	_, err = audit.VerifyFile(bytes.NewReader(file), &bad)
	require.ErrorContains(t, err, "SHA-256")
	bad = *m
	bad.Entries = 37
	_, err = audit.VerifyFile(bytes.NewReader(file), &bad)
	require.ErrorContains(t, err, "the manifest says")
}

func TestASegmentVerifiesOnItsOwn(t *testing.T) {
	t.Parallel()
	pool, _ := journal(t)
	whole, _ := export(t, pool, audit.JSONL, audit.Range{})
	seg, sum := export(t, pool, audit.JSONL, audit.Range{FromSeq: 10, ToSeq: 20})
	require.EqualValues(t, 11, sum.Entries)
	_, err := audit.VerifyFile(bytes.NewReader(seg), nil)
	require.NoError(t, err)
	// The segment's lines are the whole export's lines 10 to 20, byte for byte.
	lines := strings.SplitAfter(string(whole), "\n")
	require.Equal(t, strings.Join(lines[9:20], ""), strings.Join(strings.SplitAfter(string(seg), "\n")[:11], ""))
	var first struct {
		PrevHash string `json:"prev_hash"`
	}
	require.NoError(t, json.Unmarshal([]byte(lines[9]), &first))
	require.Equal(t, first.PrevHash, sum.StartPrevHash)

	// A period maps to the entries recorded in it (all of this journal was recorded just now).
	_, none := export(t, pool, audit.JSONL, audit.Range{To: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)})
	require.Zero(t, none.Entries)
	_, all := export(t, pool, audit.JSONL, audit.Range{From: time.Now().Add(-time.Hour)})
	require.EqualValues(t, 36, all.Entries)
}

func TestCSVExportHasOneRowPerPosting(t *testing.T) {
	t.Parallel()
	pool, _ := journal(t)
	file, sum := export(t, pool, audit.CSV, audit.Range{})
	require.True(t, bytes.Contains(file, []byte("\r\n")), "RFC 4180 line ends")
	rows, err := csv.NewReader(bytes.NewReader(file)).ReadAll()
	require.NoError(t, err)
	require.Equal(t, audit.CSVHeader, rows[0])
	require.Len(t, rows[1:], int(sum.Postings))
	debit := decimal.Zero
	for _, r := range rows[1:] {
		if r[9] == "CNY" && r[10] == "debit" {
			debit = debit.Add(decimal.RequireFromString(r[11]))
		}
	}
	require.Equal(t, sum.Sums["CNY"].Debit, debit.StringFixed(2))
	require.Contains(t, string(file), `"{""note"": ""quote \"" and ; semicolon, 中文"", ""order_id"": ""o0""}"`)
}

// TestHLedgerChecksTheExportAndAgreesWithTheTrialBalance runs Debian's hledger (installed by the
// project's set-up, scripts/tools.sh): the export passes `hledger check`, and `hledger bal` equals
// our trial balance account by account.
func TestHLedgerChecksTheExportAndAgreesWithTheTrialBalance(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("hledger")
	require.NoError(t, err, "hledger is needed: make test installs it (scripts/tools.sh)")
	pool, l := journal(t)
	file, _ := export(t, pool, audit.HLedger, audit.Range{})
	path := filepath.Join(t.TempDir(), "export.journal")
	require.NoError(t, os.WriteFile(path, file, 0o600))
	out, err := exec.Command(bin, "-f", path, "check").CombinedOutput()
	require.NoError(t, err, "hledger check: %s", out)

	out, err = exec.Command(bin, "-f", path, "bal", "--flat", "--no-total", "-O", "csv", "--layout", "bare").CombinedOutput()
	require.NoError(t, err, "hledger bal: %s", out)
	rows, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	require.NoError(t, err)
	got := map[string]string{}
	for _, r := range rows[1:] {
		got[r[0]+" "+r[1]] = r[2]
	}
	lines, _, err := l.TrialBalance(context.Background(), nil)
	require.NoError(t, err)
	want := map[string]string{}
	for _, tl := range lines {
		v := tl.Debit.Decimal().Sub(tl.Credit.Decimal())
		if v.IsZero() {
			continue
		}
		want[audit.HLedgerAccount(tl.Code)+" "+string(tl.Currency)] = money.FormatFixed(v, tl.Currency.Scale())
	}
	require.Equal(t, want, got)
}

// brokenClient is a client that goes away after a few bytes: its writes fail from then on.
type brokenClient struct {
	n      int
	cancel context.CancelFunc
}

func (b *brokenClient) Write(p []byte) (int, error) {
	b.n += len(p)
	if b.n > 2000 {
		b.cancel()
		return 0, fmt.Errorf("client went away")
	}
	return len(p), nil
}

// TestAnExportStopsWhenItsClientGoesAway: the stream ends at the first failed write, its query is
// cancelled with the request's context, and the connection goes back to the pool.
func TestAnExportStopsWhenItsClientGoesAway(t *testing.T) {
	t.Parallel()
	pool, _ := journal(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sum, err := audit.Export(ctx, pool, &brokenClient{cancel: cancel}, audit.JSONL, audit.Range{}, nil)
	require.Error(t, err)
	require.Less(t, sum.Entries, int64(36), "it stopped before the end")
	require.Eventually(t, func() bool { return pool.Stat().AcquiredConns() == 0 }, 5*time.Second, 10*time.Millisecond,
		"the export's connection is released")
}
