package rebate

import "errors"

// Errors with a problem code each (see internal/httpapi/problem.go).
var (
	ErrValidation          = errors.New("validation failed")
	ErrUnknownReferrer     = errors.New("unknown referrer")
	ErrSelfReferral        = errors.New("a member cannot invite itself")
	ErrUnknownMember       = errors.New("unknown member")
	ErrUnsupportedCurrency = errors.New("currency is not the program's")
	ErrRefundExceedsOrder  = errors.New("refunds would exceed the order amount")
	ErrIdempotencyConflict = errors.New("id was used with a different request")
	ErrNotFound            = errors.New("not found")
)
