package ledger

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// The request hash and the seal hash cover JSON documents whose bytes may never change: stored
// hashes are compared on every replay, and the seal chain is recomputed by verify and by auditors
// offline. Both were first written with encoding/json's Marshal of a struct; these functions append
// the same bytes directly (reflection was most of the hashing cost), and the tests compare them with
// Marshal of those structs on random input.

// appendJSONString appends s as encoding/json writes a string: printable ASCII other than `"`, `\`
// and the HTML characters `<`, `>`, `&` as it is; anything else goes through Marshal itself, so
// escaping follows its rules exactly.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONTime appends t as Marshal writes a string holding t.UTC().Format(time.RFC3339Nano).
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendJSONValue appends a value decoded by encoding/json with UseNumber (maps, slices, strings,
// json.Number, bools and nil) as Marshal would: map keys sorted byte-wise.
func appendJSONValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case string:
		return appendJSONString(b, v), nil
	case json.Number: // the literal the decoder read
		if v == "" {
			return append(b, '0'), nil // as Marshal writes an empty Number
		}
		return append(b, v...), nil
	case []any:
		b = append(b, '[')
		for i, x := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSONValue(b, x); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendJSONValue(b, v[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	default:
		out, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		return append(b, out...), nil
	}
}

// appendJSONStrings appends ss as Marshal writes a []string: null when nil.
func appendJSONStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// canonicalPosting is one posting as both hashes cover it.
type canonicalPosting struct {
	Account  string
	Currency string
	Side     Side
	Amount   string
}

// appendJSONPostings appends postings as Marshal writes a []struct{account, currency, side, amount}.
func appendJSONPostings(b []byte, ps []canonicalPosting) []byte {
	if ps == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"account":`...)
		b = appendJSONString(b, p.Account)
		b = append(b, `,"currency":`...)
		b = appendJSONString(b, p.Currency)
		b = append(b, `,"side":`...)
		b = appendJSONString(b, string(p.Side))
		b = append(b, `,"amount":`...)
		b = appendJSONString(b, p.Amount)
		b = append(b, '}')
	}
	return append(b, ']')
}
