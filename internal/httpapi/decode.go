package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/apperr"
)

// readBody reads the request body (already capped by the body limit middleware).
func readBody(c echo.Context) ([]byte, error) {
	b, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return nil, &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large", Detail: "request body too large"}
	}
	return b, nil
}

// decodeStrict decodes one JSON object, refusing unknown fields and trailing data.
func decodeStrict(c echo.Context, v any) error {
	b, err := readBody(c)
	if err != nil {
		return err
	}
	return decodeBytes(b, v)
}

// decodeBytes decodes one JSON object strictly. A string holding NUL (\u0000) is refused here, for
// every body at once: PostgreSQL's text cannot store it.
func decodeBytes(b []byte, v any) error {
	if hasNUL(b) {
		return validation("strings must not contain the NUL character (\\u0000)")
	}
	return decodeAny(b, v)
}

// decodeAny is decodeBytes without the NUL check, for a batch whose items are checked one by one.
func decodeAny(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apperr.FromJSON("the body", err)
	}
	if dec.More() {
		return validation("the body has data after its JSON object")
	}
	return nil
}

// created answers a create, marking replays as the contract says.
func created(c echo.Context, status int, replayed bool, body any) error {
	if replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
	}
	return c.JSON(status, body)
}

// decodeOptional is decodeStrict for bodies that may be empty (all fields optional).
func decodeOptional(c echo.Context, v any) error {
	b, err := readBody(c)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return err
	}
	return decodeBytes(b, v)
}

// hasNUL reports whether JSON text holds the escape \u0000 (an escaped backslash before "u0000" is
// text, not the escape).
func hasNUL(b []byte) bool {
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(`u0000`))
		if j < 0 {
			return false
		}
		at := i + j
		n := 0
		for k := at - 1; k >= 0 && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 1 {
			return true
		}
		i = at + 1
	}
}
