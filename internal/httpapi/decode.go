package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
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

// decodeBytes decodes one JSON object strictly.
func decodeBytes(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return validation("malformed JSON body: " + err.Error())
	}
	if dec.More() {
		return validation("malformed JSON body: trailing data after the object")
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
