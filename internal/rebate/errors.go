package rebate

import (
	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/idem"
)

// Errors the engine returns, each with its problem code (internal/apperr).
var (
	ErrValidation          = apperr.New(apperr.Validation, "validation failed")
	ErrUnknownReferrer     = apperr.New(apperr.UnknownReferrer, "unknown referrer")
	ErrSelfReferral        = apperr.New(apperr.SelfReferral, "a member cannot invite itself")
	ErrUnknownMember       = apperr.New(apperr.UnknownMember, "unknown member")
	ErrUnsupportedCurrency = apperr.New(apperr.UnsupportedCurrency, "currency is not the program's")
	ErrRefundExceedsOrder  = apperr.New(apperr.RefundExceedsOrder, "refunds would exceed the order amount")
	ErrIdempotencyConflict = idem.ErrConflict
	ErrNotFound            = apperr.New(apperr.NotFound, "not found")
	// ErrInsufficientPoints: the member's unexpired points do not cover a redemption.
	ErrInsufficientPoints = apperr.New(apperr.InsufficientFunds, "insufficient points")
)
