package ledger

import (
	"errors"

	"github.com/rebate-ledger/rebate/internal/apperr"
)

// Errors the ledger returns, each with its problem code (internal/apperr).
var (
	ErrInvalidEntry        = apperr.New(apperr.Validation, "invalid entry")
	ErrUnknownAccount      = apperr.New(apperr.NotFound, "unknown account")
	ErrIdempotencyConflict = apperr.New(apperr.IdempotencyConflict, "idempotency key was used with a different request")
	ErrInsufficientFunds   = apperr.New(apperr.InsufficientFunds, "insufficient funds")
	ErrNotFound            = apperr.New(apperr.NotFound, "not found")
	// ErrTooManyRetries has no code: it is an internal error.
	ErrTooManyRetries = errors.New("transaction kept conflicting")
)
