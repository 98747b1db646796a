package audit

import (
	"bufio"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rebate-ledger/rebate/internal/ledger"
)

// jsonlWriter writes one line per entry, {"seq", "prev_hash", "hash", "entry"}, where entry is the
// entry's canonical encoding byte for byte (ledger.CanonicalJSON), so that a verifier hashes the
// bytes it reads: hash = SHA-256(prev_hash || entry). The last line is {"trailer": Summary}.
type jsonlWriter struct {
	w   io.Writer
	buf []byte
}

func (j *jsonlWriter) Begin(*Summary) error { return nil }

func (j *jsonlWriter) Entry(se ledger.SealedEntry) error {
	canon, err := ledger.CanonicalJSON(se.Entry)
	if err != nil {
		return err
	}
	b := j.buf[:0]
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, se.Seq, 10)
	b = append(b, `,"prev_hash":"`...)
	b = hex.AppendEncode(b, se.PrevHash)
	b = append(b, `","hash":"`...)
	b = hex.AppendEncode(b, se.Hash)
	b = append(b, `","entry":`...)
	b = append(b, canon...)
	b = append(b, "}\n"...)
	j.buf = b
	_, err = j.w.Write(b)
	return err
}

func (j *jsonlWriter) End(s *Summary) error {
	b, err := json.Marshal(struct {
		Trailer *Summary `json:"trailer"`
	}{s})
	if err != nil {
		return err
	}
	_, err = j.w.Write(append(b, '\n'))
	return err
}

// CSVHeader is the CSV export's header: one row per posting, with its entry's columns.
var CSVHeader = []string{"seq", "entry_id", "idempotency_key", "kind", "occurred_at", "recorded_at", "refers_to", "metadata",
	"account", "currency", "side", "amount", "prev_hash", "hash"}

type csvWriter struct{ w *csv.Writer }

func newCSVWriter(w io.Writer) *csvWriter {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true // RFC 4180
	return &csvWriter{w: cw}
}

func (c *csvWriter) Begin(*Summary) error { return c.w.Write(CSVHeader) }

func (c *csvWriter) Entry(se ledger.SealedEntry) error {
	e := se.Entry
	meta := string(e.Metadata)
	if meta == "" {
		meta = "{}"
	}
	for _, p := range e.Postings {
		if err := c.w.Write([]string{strconv.FormatInt(se.Seq, 10), strconv.FormatInt(e.ID, 10), e.Key, e.Kind,
			e.OccurredAt.UTC().Format(time.RFC3339Nano), e.RecordedAt.UTC().Format(time.RFC3339Nano), strconv.FormatInt(e.RefersTo, 10),
			meta, p.Account, string(p.Amount.Currency()), string(p.Side), p.Amount.String(),
			hex.EncodeToString(se.PrevHash), hex.EncodeToString(se.Hash)}); err != nil {
			return err
		}
	}
	return nil
}

func (c *csvWriter) End(*Summary) error {
	c.w.Flush()
	return c.w.Error()
}

// hledgerWriter writes an hledger journal: one transaction per entry, dated by the entry's
// occurred_at (its business date, UTC), with the seq, entry id, kind and hash as tags, accounts
// under hledger's conventional top levels, and the currency as the commodity.
type hledgerWriter struct {
	wrapped io.Writer
	w       *bufio.Writer
}

// HLedgerAccount maps a chart account to hledger's conventional top levels.
func HLedgerAccount(code string) string {
	switch code {
	case ledger.RebateExpense:
		return "expenses:rebate"
	case ledger.Cash:
		return "assets:cash"
	case ledger.FeeIncome:
		return "income:fees"
	case ledger.PointsRedeemed:
		return "expenses:points_redeemed"
	case ledger.PointsExpired:
		return "income:points_expired"
	}
	if rest, ok := strings.CutPrefix(code, "member:"); ok {
		return "liabilities:member:" + rest
	}
	return "equity:unknown:" + strings.ReplaceAll(code, " ", "_")
}

func (h *hledgerWriter) Begin(s *Summary) error {
	h.w = bufio.NewWriterSize(h.wrapped, 64<<10)
	fmt.Fprintf(h.w, "; rebate ledger journal export (hledger format)\n; chain seq %d to %d; the link before the first entry: see the first transaction's prev tag\n\n",
		s.FromSeq, s.ToSeq)
	// Each commodity's precision and decimal mark, declared so that amounts are read exactly.
	for _, c := range []string{"CNY 1000.00", "USD 1000.00", "EUR 1000.00", "JPY 1000.", "PTS 1000."} {
		cur, sample, _ := strings.Cut(c, " ")
		fmt.Fprintf(h.w, "commodity %s %s\n", sample, cur)
	}
	_, err := h.w.WriteString("\n")
	return err
}

func (h *hledgerWriter) Entry(se ledger.SealedEntry) error {
	e := se.Entry
	desc := strings.NewReplacer(";", ",", "|", "/", "\n", " ", "\r", " ").Replace(e.Kind + " " + e.Key)
	fmt.Fprintf(h.w, "%s %s  ; seq:%d, entry:%d, kind:%s, hash:%s, prev:%s\n", e.OccurredAt.UTC().Format("2006-01-02"), desc,
		se.Seq, e.ID, e.Kind, hex.EncodeToString(se.Hash), hex.EncodeToString(se.PrevHash))
	for _, p := range e.Postings {
		amount := p.Amount.String()
		if p.Side == ledger.Credit {
			amount = "-" + amount
		}
		fmt.Fprintf(h.w, "    %-50s  %s %s\n", HLedgerAccount(p.Account), amount, p.Amount.Currency())
	}
	_, err := h.w.WriteString("\n")
	return err
}

func (h *hledgerWriter) End(s *Summary) error {
	fmt.Fprintf(h.w, "; end: %d entries, %d postings, last seq %d, last hash %s, chain head %d, unsealed %d\n",
		s.Entries, s.Postings, s.ToSeq, s.LastHash, s.ChainHeadSeq, s.Unsealed)
	return h.w.Flush()
}
