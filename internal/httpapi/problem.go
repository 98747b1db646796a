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
	case errors.Is(err, rebate.ErrValidation), errors.Is(err, rebate.ErrInvalidProgram):
		e = &Error{Status: http.StatusBadRequest, Code: "validation_failed", Detail: err.Error()}
	case errors.Is(err, rebate.ErrUnknownReferrer):
		e = &Error{Status: http.StatusUnprocessableEntity, Code: "unknown_referrer", Detail: err.Error()}
	case errors.Is(err, rebate.ErrSelfReferral):
		e = &Error{Status: http.StatusUnprocessableEntity, Code: "self_referral", Detail: err.Error()}
	case errors.Is(err, rebate.ErrUnknownMember):
		e = &Error{Status: http.StatusUnprocessableEntity, Code: "unknown_member", Detail: err.Error()}
	case errors.Is(err, rebate.ErrUnsupportedCurrency):
		e = &Error{Status: http.StatusUnprocessableEntity, Code: "unsupported_currency", Detail: err.Error()}
	case errors.Is(err, rebate.ErrRefundExceedsOrder):
		e = &Error{Status: http.StatusUnprocessableEntity, Code: "refund_exceeds_order", Detail: err.Error()}
	case errors.Is(err, rebate.ErrInsufficientPoints):
		e = &Error{Status: http.StatusUnprocessableEntity, Code: "insufficient_funds", Detail: err.Error()}
	case errors.Is(err, rebate.ErrIdempotencyConflict):
		e = &Error{Status: http.StatusConflict, Code: "idempotency_conflict", Detail: err.Error()}
	case errors.Is(err, ledger.ErrNotFound), errors.Is(err, ledger.ErrUnknownAccount), errors.Is(err, rebate.ErrNotFound):
		e = &Error{Status: http.StatusNotFound, Code: "not_found", Detail: err.Error()}
	case errors.Is(err, ledger.ErrIdempotencyConflict):
		e = &Error{Status: http.StatusConflict, Code: "idempotency_conflict", Detail: err.Error()}
	case errors.Is(err, ledger.ErrInsufficientFunds):
		e = &Error{Status: http.StatusUnprocessableEntity, Code: "insufficient_funds", Detail: err.Error()}
	case errors.Is(err, ledger.ErrInvalidEntry):
		e = &Error{Status: http.StatusBadRequest, Code: "validation_failed", Detail: err.Error()}
	default:
		log.Error("internal error", "err", err, "request_id", reqID)
		e = &Error{Status: http.StatusInternalServerError, Code: "internal", Detail: "internal error; see the server log for request " + reqID}
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
