package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/store"
)

// Problem is an RFC 9457 problem document with a stable machine code. Limit and Remaining say
// which withdrawal limit refused a request and what is left of it (limit_exceeded only).
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Detail    string `json:"detail,omitempty"`
	Limit     string `json:"limit,omitempty"`
	Remaining string `json:"remaining,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// Error is an error with a problem status and code, made by handlers for input they refuse.
type Error struct {
	Status int
	Code   string
	Detail string
}

func (e *Error) Error() string { return e.Code + ": " + e.Detail }

func validation(detail string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: string(apperr.Validation), Detail: detail}
}

// StatusOf is the HTTP status of a domain code (the API's and the console's); a code without an
// entry is a 400.
func StatusOf(code apperr.Code) int {
	if status, ok := statusOf[code]; ok {
		return status
	}
	return http.StatusBadRequest
}

// statusOf is the one table from the domain's codes (internal/apperr) to HTTP statuses.
var statusOf = map[apperr.Code]int{
	apperr.Validation:          http.StatusBadRequest,
	apperr.NotFound:            http.StatusNotFound,
	apperr.Unauthorized:        http.StatusUnauthorized,
	apperr.Forbidden:           http.StatusForbidden,
	apperr.IdempotencyConflict: http.StatusConflict,
	apperr.InvalidState:        http.StatusConflict,
	apperr.InsufficientFunds:   http.StatusUnprocessableEntity,
	apperr.OutstandingDebt:     http.StatusUnprocessableEntity,
	apperr.BelowMinimum:        http.StatusUnprocessableEntity,
	apperr.AboveMaximum:        http.StatusUnprocessableEntity,
	apperr.LimitExceeded:       http.StatusUnprocessableEntity,
	apperr.UnknownReferrer:     http.StatusUnprocessableEntity,
	apperr.SelfReferral:        http.StatusUnprocessableEntity,
	apperr.UnknownMember:       http.StatusUnprocessableEntity,
	apperr.RefundExceedsOrder:  http.StatusUnprocessableEntity,
	apperr.UnsupportedCurrency: http.StatusUnprocessableEntity,
	apperr.Unavailable:         http.StatusServiceUnavailable,
}

// maxDetail bounds a problem's detail: details are for people, and never echo a large input back.
const maxDetail = 300

// toProblem maps every error to its problem: our own *Error, echo's HTTP errors, the domain's coded
// errors (apperr). Anything else is an internal error: logged in full, shown as a bare 500.
func toProblem(err error, log *slog.Logger, reqID string) Problem {
	var e *Error
	var he *echo.HTTPError
	var limit, remaining string
	switch {
	case errors.As(err, &e):
	case errors.As(err, &he):
		e = &Error{Status: he.Code, Code: codeForStatus(he.Code), Detail: http.StatusText(he.Code)}
		if m, ok := he.Message.(string); ok {
			e.Detail = m
		}
	default:
		if ae := apperr.As(err); ae != nil {
			e = &Error{Status: StatusOf(ae.Code), Code: string(ae.Code), Detail: err.Error()}
			limit, remaining = ae.Limit, ae.Remaining
			break
		}
		if store.IsUnavailable(err) {
			log.Warn("database unavailable", "err", err, "request_id", reqID)
			e = &Error{Status: http.StatusServiceUnavailable, Code: string(apperr.Unavailable),
				Detail: "the database is unavailable; nothing was changed: retry the same request later"}
			break
		}
		log.Error("internal error", "err", err, "request_id", reqID)
		e = &Error{Status: http.StatusInternalServerError, Code: "internal", Detail: "internal error; see the server log for request " + reqID}
	}
	detail := e.Detail
	if len(detail) > maxDetail {
		detail = strings.ToValidUTF8(detail[:maxDetail], "") + "…"
	}
	return Problem{
		Type: "https://rebate-ledger.dev/problems/" + e.Code, Title: http.StatusText(e.Status),
		Status: e.Status, Code: e.Code, Detail: detail, Limit: limit, Remaining: remaining, RequestID: reqID,
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
