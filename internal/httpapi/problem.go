package httpapi

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/rebate"
)

// Problem is an RFC 9457 problem document with a stable machine code.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Detail    string `json:"detail,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// Error is an error with a problem code, made by handlers for input they refuse.
type Error struct {
	Status int
	Code   string
	Detail string
}

func (e *Error) Error() string { return e.Code + ": " + e.Detail }

func validation(detail string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "validation_failed", Detail: detail}
}

// sentinels maps the domain's errors to their problem status and code; the first match wins.
var sentinels = []struct {
	err    error
	status int
	code   string
}{
	{rebate.ErrValidation, http.StatusBadRequest, "validation_failed"},
	{rebate.ErrInvalidProgram, http.StatusBadRequest, "validation_failed"},
	{ledger.ErrInvalidEntry, http.StatusBadRequest, "validation_failed"},
	{rebate.ErrUnknownReferrer, http.StatusUnprocessableEntity, "unknown_referrer"},
	{rebate.ErrSelfReferral, http.StatusUnprocessableEntity, "self_referral"},
	{rebate.ErrUnknownMember, http.StatusUnprocessableEntity, "unknown_member"},
	{rebate.ErrUnsupportedCurrency, http.StatusUnprocessableEntity, "unsupported_currency"},
	{rebate.ErrRefundExceedsOrder, http.StatusUnprocessableEntity, "refund_exceeds_order"},
	{rebate.ErrInsufficientPoints, http.StatusUnprocessableEntity, "insufficient_funds"},
	{ledger.ErrInsufficientFunds, http.StatusUnprocessableEntity, "insufficient_funds"},
	{rebate.ErrIdempotencyConflict, http.StatusConflict, "idempotency_conflict"},
	{ledger.ErrIdempotencyConflict, http.StatusConflict, "idempotency_conflict"},
	{rebate.ErrNotFound, http.StatusNotFound, "not_found"},
	{ledger.ErrNotFound, http.StatusNotFound, "not_found"},
	{ledger.ErrUnknownAccount, http.StatusNotFound, "not_found"},
}

// toProblem maps every error to its problem: our own *Error, echo's HTTP errors, the domain's
// sentinels. Anything else is an internal error: logged in full, shown as a bare 500.
func toProblem(err error, log *slog.Logger, reqID string) Problem {
	var e *Error
	var he *echo.HTTPError
	switch {
	case errors.As(err, &e):
	case errors.As(err, &he):
		e = &Error{Status: he.Code, Code: codeForStatus(he.Code), Detail: http.StatusText(he.Code)}
		if m, ok := he.Message.(string); ok {
			e.Detail = m
		}
	default:
		for _, s := range sentinels {
			if errors.Is(err, s.err) {
				e = &Error{Status: s.status, Code: s.code, Detail: err.Error()}
				break
			}
		}
		if e == nil {
			log.Error("internal error", "err", err, "request_id", reqID)
			e = &Error{Status: http.StatusInternalServerError, Code: "internal", Detail: "internal error; see the server log for request " + reqID}
		}
	}
	return Problem{
		Type: "https://rebate-ledger.dev/problems/" + e.Code, Title: http.StatusText(e.Status),
		Status: e.Status, Code: e.Code, Detail: e.Detail, RequestID: reqID,
	}
}

func codeForStatus(status int) string {
	switch status {
	case http.StatusNotFound:
		return "not_found"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusRequestEntityTooLarge:
		return "payload_too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusServiceUnavailable:
		return "unavailable"
	case http.StatusTooManyRequests:
		return "rate_limited"
	}
	if status >= 500 {
		return "internal"
	}
	return "validation_failed"
}
