package ledger

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"pgregory.net/rapid"

	"github.com/rebate-ledger/rebate/internal/money"
)

// The structs the request hash and the seal hash marshalled with encoding/json before
// canonical.go: stored hashes and seals were made from their bytes, so the encoders must write
// exactly these.
type marshalPosting struct {
	Account  string `json:"account"`
	Currency string `json:"currency"`
	Side     Side   `json:"side"`
	Amount   string `json:"amount"`
}

type marshalRequest struct {
	Key            string           `json:"key"`
	Kind           string           `json:"kind"`
	OccurredAt     string           `json:"occurred_at"`
	Metadata       json.RawMessage  `json:"metadata"`
	RefersTo       int64            `json:"refers_to"`
	Postings       []marshalPosting `json:"postings"`
	AllowOverdraft []string         `json:"allow_overdraft"`
}

type marshalEntry struct {
	ID         int64            `json:"id"`
	Key        string           `json:"idempotency_key"`
	Kind       string           `json:"kind"`
	OccurredAt string           `json:"occurred_at"`
	RecordedAt string           `json:"recorded_at"`
	RefersTo   int64            `json:"refers_to"`
	Metadata   any              `json:"metadata"`
	Postings   []marshalPosting `json:"postings"`
}

// jsonText draws strings that need every kind of escaping encoding/json does: quotes, backslashes,
// HTML characters, control characters, DEL, U+2028/U+2029, other non-ASCII and invalid UTF-8.
func jsonText(t *rapid.T, label string) string {
	pieces := rapid.SliceOfN(rapid.SampledFrom([]string{
		"a", "Z", "0", " ", ":", "-", "_", `"`, `\`, "<", ">", "&", "\x00", "\n", "\t", "\r", "\b", "\f",
		"\x1f", "\x7f", "\u2028", "\u2029", "é", "中", "😀", "\xff", "\xc3", "\xe2\x80",
	}), 0, 12).Draw(t, label)
	return strings.Join(pieces, "")
}

// jsonValue draws what a JSON decoder with UseNumber returns, nested up to depth.
func jsonValue(t *rapid.T, label string, depth int) any {
	kinds := []string{"null", "bool", "string", "number"}
	if depth > 0 {
		kinds = append(kinds, "array", "object")
	}
	switch rapid.SampledFrom(kinds).Draw(t, label+".kind") {
	case "null":
		return nil
	case "bool":
		return rapid.Bool().Draw(t, label+".bool")
	case "string":
		return jsonText(t, label+".string")
	case "number":
		return json.Number(rapid.SampledFrom([]string{"0", "-0", "1", "-12", "1.50", "3.14159", "1e5", "2E-3", "12345678901234567890123"}).Draw(t, label+".number"))
	case "array":
		n := rapid.IntRange(0, 3).Draw(t, label+".len")
		out := make([]any, n)
		for i := range out {
			out[i] = jsonValue(t, label+".item", depth-1)
		}
		return out
	default:
		n := rapid.IntRange(0, 4).Draw(t, label+".len")
		out := map[string]any{}
		for range n {
			out[jsonText(t, label+".key")] = jsonValue(t, label+".value", depth-1)
		}
		return out
	}
}

func drawTime(t *rapid.T, label string) time.Time {
	zone := time.FixedZone("x", rapid.IntRange(-12, 14).Draw(t, label+".zone")*3600)
	return time.Unix(rapid.Int64Range(0, 4e9).Draw(t, label+".s"), rapid.Int64Range(0, 999_999_999).Draw(t, label+".ns")).In(zone)
}

func TestRequestHashIsMarshalsBytes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := EntryRequest{Key: jsonText(t, "key"), Kind: jsonText(t, "kind"), OccurredAt: drawTime(t, "occurred"),
			RefersTo: rapid.Int64().Draw(t, "refers_to")}
		if rapid.Bool().Draw(t, "has_overdraft") {
			r.AllowOverdraft = []string{}
			for range rapid.IntRange(0, 2).Draw(t, "overdrafts") {
				r.AllowOverdraft = append(r.AllowOverdraft, jsonText(t, "overdraft"))
			}
		}
		if m, ok := jsonValue(t, "metadata", 2).(map[string]any); ok {
			r.Metadata = m
		}
		for range rapid.IntRange(0, 5).Draw(t, "postings") {
			cur := rapid.SampledFrom(money.Currencies()).Draw(t, "currency")
			amt, err := money.New(decimal.New(rapid.Int64Range(-1e12, 1e12).Draw(t, "units"), -cur.Scale()), cur)
			if err != nil {
				t.Fatal(err)
			}
			r.Postings = append(r.Postings, PostingRequest{Account: jsonText(t, "account"),
				Side: Side(rapid.SampledFrom([]string{"debit", "credit", `"x<`}).Draw(t, "side")), Amount: amt})
		}
		meta, err := r.metadataJSON()
		if err != nil {
			t.Fatal(err)
		}

		want := marshalRequest{Key: r.Key, Kind: r.Kind, Metadata: meta, RefersTo: r.RefersTo, AllowOverdraft: r.AllowOverdraft,
			OccurredAt: r.OccurredAt.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano)}
		for _, p := range r.Postings {
			want.Postings = append(want.Postings, marshalPosting{Account: p.Account, Currency: string(p.Amount.Currency()),
				Side: p.Side, Amount: p.Amount.Decimal().StringFixed(p.Amount.Currency().Scale())})
		}
		slices.SortFunc(want.Postings, func(a, b marshalPosting) int {
			return cmp.Or(strings.Compare(a.Account, b.Account), strings.Compare(a.Currency, b.Currency),
				strings.Compare(string(a.Side), string(b.Side)), strings.Compare(a.Amount, b.Amount))
		})
		b, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if got := r.hash(meta); !bytes.Equal(got, sum[:]) {
			t.Fatalf("hash differs from Marshal's bytes %s", b)
		}
	})
}

func TestCanonicalJSONIsMarshalsBytes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := Entry{ID: rapid.Int64().Draw(t, "id"), Key: jsonText(t, "key"), Kind: jsonText(t, "kind"),
			OccurredAt: drawTime(t, "occurred"), RecordedAt: drawTime(t, "recorded"), RefersTo: rapid.Int64().Draw(t, "refers_to")}
		if rapid.Bool().Draw(t, "has_metadata") {
			raw, err := json.Marshal(jsonValue(t, "metadata", 3))
			if err != nil {
				t.Fatal(err)
			}
			e.Metadata = raw
		}
		want := marshalEntry{ID: e.ID, Key: e.Key, Kind: e.Kind, RefersTo: e.RefersTo, Metadata: map[string]any{},
			OccurredAt: e.OccurredAt.UTC().Format(time.RFC3339Nano), RecordedAt: e.RecordedAt.UTC().Format(time.RFC3339Nano),
			Postings: []marshalPosting{}}
		if len(e.Metadata) > 0 {
			dec := json.NewDecoder(bytes.NewReader(e.Metadata))
			dec.UseNumber()
			if err := dec.Decode(&want.Metadata); err != nil {
				t.Fatal(err)
			}
		}
		for range rapid.IntRange(0, 4).Draw(t, "postings") {
			cur := rapid.SampledFrom(money.Currencies()).Draw(t, "currency")
			// As read from the database: any stored scale, even one a row altered behind the
			// constraints has, or no currency at all.
			exact := decimal.New(rapid.Int64Range(-1e12, 1e12).Draw(t, "units"), rapid.Int32Range(-4, 1).Draw(t, "exp"))
			p := Posting{Account: jsonText(t, "account"), Side: Side(jsonText(t, "side")), currency: cur, exact: exact}
			mp := marshalPosting{Account: p.Account, Side: p.Side, Currency: string(cur), Amount: exact.StringFixed(cur.Scale())}
			if !exact.Equal(exact.Truncate(cur.Scale())) {
				mp.Amount = exact.String()
			}
			if rapid.Bool().Draw(t, "checked") { // a posting the ledger wrote: currency from its Amount
				amt, err := money.New(exact.Truncate(cur.Scale()), cur)
				if err != nil {
					t.Fatal(err)
				}
				p.currency, p.Amount = "", amt
				mp.Amount = amt.Decimal().StringFixed(cur.Scale())
			}
			e.Postings = append(e.Postings, p)
			want.Postings = append(want.Postings, mp)
		}
		wantBytes, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := CanonicalJSON(e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, wantBytes) {
			t.Fatalf("CanonicalJSON\n got %s\nwant %s", got, wantBytes)
		}
	})
}
