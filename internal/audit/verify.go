package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"sync"

	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/ledger"
)

// Manifest describes an export file: what it covers (the Summary) and the SHA-256 of its bytes.
// `rebate export --out FILE` writes it beside the file as FILE.manifest.json.
type Manifest struct {
	Summary
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	Range  Range  `json:"range"`
}

// Report is what an offline verification checked.
type Report struct {
	Lines    int64           `json:"lines"`
	Entries  int64           `json:"entries"`
	Postings int64           `json:"postings"`
	FromSeq  int64           `json:"first_seq"`
	ToSeq    int64           `json:"last_seq"`
	LastHash string          `json:"last_hash"`
	Sums     map[string]Sums `json:"sums"`
	SHA256   string          `json:"sha256"`
}

// ErrTampered is wrapped by every verification failure; the message names the first bad line.
var ErrTampered = errors.New("the export does not verify")

type exportLine struct {
	Seq      int64           `json:"seq"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
	Entry    json.RawMessage `json:"entry"`
	Trailer  *Summary        `json:"trailer"`
}

type exportEntry struct {
	ID       int64 `json:"id"`
	Postings []struct {
		Account  string `json:"account"`
		Currency string `json:"currency"`
		Side     string `json:"side"`
		Amount   string `json:"amount"`
	} `json:"postings"`
}

// checked is what one line says on its own: its hash recomputed, its entry balanced.
type checked struct {
	trailer  *Summary
	seq      int64
	prevHex  string
	prev     []byte
	hash     []byte
	hashHex  string
	postings int64
	debit    map[string]decimal.Decimal
	credit   map[string]decimal.Decimal
	problem  string // empty when the line is sound on its own
}

// checkLine checks everything a line can show alone; the links between lines are checked in order
// afterwards. Lines are independent here, so they are checked on every core.
func checkLine(raw []byte) checked {
	var c checked
	var l exportLine
	if err := json.Unmarshal(bytes.TrimRight(raw, "\r\n"), &l); err != nil {
		c.problem = "not a JSON object"
		return c
	}
	if l.Trailer != nil {
		c.trailer = l.Trailer
		return c
	}
	if len(l.Entry) == 0 {
		c.problem = "no entry"
		return c
	}
	c.seq, c.prevHex, c.hashHex = l.Seq, l.PrevHash, l.Hash
	prev, err1 := hex.DecodeString(l.PrevHash)
	hash, err2 := hex.DecodeString(l.Hash)
	if err1 != nil || err2 != nil || len(prev) != sha256.Size || len(hash) != sha256.Size {
		c.problem = "prev_hash and hash must be 64 hex digits"
		return c
	}
	c.prev, c.hash = prev, hash
	if got := ledger.ChainHash(prev, l.Entry); !bytes.Equal(got, hash) {
		c.problem = fmt.Sprintf("seq %d: the entry's hash is %x, the line says %x: the entry was altered", l.Seq, got, hash)
		return c
	}
	var e exportEntry
	if err := json.Unmarshal(l.Entry, &e); err != nil {
		c.problem = fmt.Sprintf("seq %d: the entry is not an entry", l.Seq)
		return c
	}
	if len(e.Postings) < 2 {
		c.problem = fmt.Sprintf("seq %d: entry %d has %d postings, at least two are needed", l.Seq, e.ID, len(e.Postings))
		return c
	}
	c.debit, c.credit = map[string]decimal.Decimal{}, map[string]decimal.Decimal{}
	net := map[string]decimal.Decimal{}
	for _, p := range e.Postings {
		d, err := decimal.NewFromString(p.Amount)
		if err != nil || !d.IsPositive() {
			c.problem = fmt.Sprintf("seq %d: amount %q is not a positive decimal", l.Seq, p.Amount)
			return c
		}
		switch p.Side {
		case "debit":
			net[p.Currency] = net[p.Currency].Add(d)
			c.debit[p.Currency] = c.debit[p.Currency].Add(d)
		case "credit":
			net[p.Currency] = net[p.Currency].Sub(d)
			c.credit[p.Currency] = c.credit[p.Currency].Add(d)
		default:
			c.problem = fmt.Sprintf("seq %d: side %q", l.Seq, p.Side)
			return c
		}
		c.postings++
	}
	for cur, d := range net {
		if !d.IsZero() {
			c.problem = fmt.Sprintf("seq %d: entry %d does not balance in %s (debits minus credits %s)", l.Seq, e.ID, cur, d)
			return c
		}
	}
	return c
}

// verifyBatch is how many lines are read before they are checked together.
const verifyBatch = 4096

// VerifyFile checks a JSONL export with no database: every entry's hash is SHA-256 of the previous
// link's hash and the entry's bytes, each line links to the one before it, seqs follow each other,
// every entry balances per currency, the trailer's counts, sums and hashes are what the lines add
// up to, and, with a manifest, the manifest says the same and the file's SHA-256 is its. The
// first failure is returned, naming its line. Lines are checked on every core, their links in order.
func VerifyFile(r io.Reader, m *Manifest) (Report, error) {
	h := sha256.New()
	br := bufio.NewReaderSize(io.TeeReader(r, h), 1<<20)
	rep := Report{}
	bad := func(line int64, format string, args ...any) (Report, error) {
		return rep, fmt.Errorf("%w: line %d: %s", ErrTampered, line, fmt.Sprintf(format, args...))
	}
	debit, credit := map[string]decimal.Decimal{}, map[string]decimal.Decimal{}
	var prevHash []byte
	var startPrev string
	var trailer *Summary
	workers := max(runtime.GOMAXPROCS(0), 1)
	lines := make([][]byte, 0, verifyBatch)
	results := make([]checked, verifyBatch)
	for eof := false; !eof; {
		lines = lines[:0]
		for len(lines) < verifyBatch {
			raw, err := br.ReadBytes('\n')
			if len(raw) == 0 && errors.Is(err, io.EOF) {
				eof = true
				break
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return rep, fmt.Errorf("read the export: %w", err)
			}
			lines = append(lines, raw)
		}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < len(lines); i += workers {
					results[i] = checkLine(lines[i])
				}
			})
		}
		wg.Wait()
		for i := range lines {
			c := &results[i]
			rep.Lines++
			n := rep.Lines
			if trailer != nil {
				return bad(n, "a line after the trailer")
			}
			if c.problem != "" {
				return bad(n, "%s", c.problem)
			}
			if c.trailer != nil {
				trailer = c.trailer
				continue
			}
			if rep.Entries == 0 {
				rep.FromSeq, startPrev = c.seq, c.prevHex
			} else {
				if c.seq != rep.ToSeq+1 {
					return bad(n, "seq %d follows seq %d: a line is missing, added or out of order", c.seq, rep.ToSeq)
				}
				if !bytes.Equal(c.prev, prevHash) {
					return bad(n, "prev_hash does not match the previous line's hash: the chain is broken here")
				}
			}
			for cur, d := range c.debit {
				debit[cur] = debit[cur].Add(d)
			}
			for cur, d := range c.credit {
				credit[cur] = credit[cur].Add(d)
			}
			rep.Postings += c.postings
			rep.Entries++
			rep.ToSeq, prevHash, rep.LastHash = c.seq, c.hash, c.hashHex
		}
	}
	rep.Sums = sumsOf(debit, credit)
	rep.SHA256 = hex.EncodeToString(h.Sum(nil))
	if trailer == nil {
		return bad(rep.Lines+1, "the trailer is missing: the file was cut short")
	}
	got := Summary{Format: JSONL, FromSeq: rep.FromSeq, ToSeq: rep.ToSeq, Entries: rep.Entries, Postings: rep.Postings,
		Sums: rep.Sums, StartPrevHash: startPrev, LastHash: rep.LastHash, ChainHeadSeq: trailer.ChainHeadSeq, Unsealed: trailer.Unsealed}
	if !reflect.DeepEqual(normalized(got), normalized(*trailer)) {
		return bad(rep.Lines, "the trailer says %s, the lines add up to %s", brief(*trailer), brief(got))
	}
	if m != nil {
		if !reflect.DeepEqual(normalized(m.Summary), normalized(got)) {
			return rep, fmt.Errorf("%w: the manifest says %s, the file holds %s", ErrTampered, brief(m.Summary), brief(got))
		}
		if m.SHA256 != rep.SHA256 {
			return rep, fmt.Errorf("%w: the file's SHA-256 is %s, the manifest says %s", ErrTampered, rep.SHA256, m.SHA256)
		}
	}
	return rep, nil
}

func normalized(s Summary) Summary {
	if len(s.Sums) == 0 {
		s.Sums = nil
	}
	return s
}

func brief(s Summary) string {
	b, _ := json.Marshal(struct {
		Entries, Postings int64
		First, Last       int64
		Sums              map[string]Sums
		Start, LastHash   string
	}{s.Entries, s.Postings, s.FromSeq, s.ToSeq, s.Sums, s.StartPrevHash, s.LastHash})
	return string(b)
}
