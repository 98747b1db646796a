package apperr

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// FromJSON turns a JSON decoding error into a validation error written for people: which field had
// the wrong type, which field is unknown, where the syntax broke. Go's own messages name Go types
// ("cannot unmarshal array into Go value of type struct {...}"), which mean nothing to a client.
func FromJSON(what string, err error) *Error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return New(Validation, "%s is empty: send a JSON object", what)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return New(Validation, "%s ends before its JSON does", what)
	case errors.As(err, &syn):
		return New(Validation, "%s is not valid JSON (at byte %d)", what, syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return New(Validation, "%s must be a JSON object, not %s", what, article(typ.Value))
		}
		return New(Validation, "%s: field %q must be %s, not %s", what, typ.Field, kindOf(typ.Type.Kind().String()), article(typ.Value))
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return New(Validation, "%s: unknown field %s", what, f)
	}
	return New(Validation, "%s is not the JSON this endpoint takes", what)
}

func article(v string) string {
	switch v {
	case "array", "object":
		return "an " + v
	case "number", "string", "bool":
		return "a " + v
	}
	return fmt.Sprint(v)
}

func kindOf(k string) string {
	switch k {
	case "string":
		return "a string"
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "bool":
		return "true or false"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "a whole number"
	case "float32", "float64":
		return "a number"
	}
	return "of another type"
}
