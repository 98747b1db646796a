// Package apperr holds the stable machine codes of PRODUCT.md §6 and the one error type that carries
// them. Domain packages return these (or wrap them); internal/httpapi maps each code to an HTTP status
// in one table. Nothing here knows about HTTP.
package apperr

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable reason a request was refused.
type Code string

// The codes. Adding one means adding its status to httpapi's table (a test checks every code has one).
const (
	Validation          Code = "validation_failed"
	NotFound            Code = "not_found"
	Unauthorized        Code = "unauthorized"
	Forbidden           Code = "forbidden"
	IdempotencyConflict Code = "idempotency_conflict"
	InsufficientFunds   Code = "insufficient_funds"
	OutstandingDebt     Code = "outstanding_debt"
	BelowMinimum        Code = "below_minimum"
	AboveMaximum        Code = "above_maximum"
	LimitExceeded       Code = "limit_exceeded"
	UnknownReferrer     Code = "unknown_referrer"
	SelfReferral        Code = "self_referral"
	UnknownMember       Code = "unknown_member"
	RefundExceedsOrder  Code = "refund_exceeds_order"
	UnsupportedCurrency Code = "unsupported_currency"
	InvalidState        Code = "invalid_state"
	Unavailable         Code = "unavailable"
)

// Codes lists every code, for the table test in httpapi.
func Codes() []Code {
	return []Code{Validation, NotFound, Unauthorized, Forbidden, IdempotencyConflict, InsufficientFunds,
		OutstandingDebt, BelowMinimum, AboveMaximum, LimitExceeded, UnknownReferrer, SelfReferral,
		UnknownMember, RefundExceedsOrder, UnsupportedCurrency, InvalidState, Unavailable}
}

// Error is a refusal with a code and a detail written for people. Limit and Remaining say which
// withdrawal limit refused a request and what is left of it (limit_exceeded only).
type Error struct {
	Code      Code
	Detail    string
	Limit     string
	Remaining string
}

func (e *Error) Error() string { return e.Detail }

// New makes an error with a code and a formatted detail.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// CodeOf is the code of the first *Error in err's chain; ok is false for errors without one
// (internal errors).
func CodeOf(err error) (code Code, ok bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, true
	}
	return "", false
}

// As returns the first *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Is reports whether err carries code.
func Is(err error, code Code) bool {
	c, ok := CodeOf(err)
	return ok && c == code
}
