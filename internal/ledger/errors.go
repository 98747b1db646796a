package ledger

import "errors"

// Errors the ledger returns; the HTTP layer maps them to problem codes.
var (
	ErrInvalidEntry        = errors.New("invalid entry")
	ErrUnknownAccount      = errors.New("unknown account")
	ErrIdempotencyConflict = errors.New("idempotency key was used with a different request")
	ErrInsufficientFunds   = errors.New("insufficient funds")
	ErrNotFound            = errors.New("not found")
	ErrTooManyRetries      = errors.New("transaction kept conflicting")
)
