// Package idem is the one idempotency primitive for requests that create or change something: a
// client id (scoped by what the request is), a SHA-256 of what the request asks, and the answer
// stored in the same transaction as the change. The same id with the same hash answers the stored
// bytes; with another hash it is an idempotency_conflict; two identical requests at once produce
// one effect, and the second answers the first's answer (Formance's idempotency hash is the anchor).
//
// Events and members keep their own tables (their client id is the row's own key, and the event
// batch path claims hundreds of ids in one statement); everything else uses this.
package idem

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// Request names one client request.
type Request struct {
	// Scope is what kind of request it is ("redemption", "withdrawal", "withdrawal.approve", ...):
	// the same client id in two scopes is two requests.
	Scope string
	// Key is the client's id for the request.
	Key string
	// Hash is HashOf what the request asks (never of the time it arrived).
	Hash []byte
}

// HashOf is the SHA-256 of v's JSON encoding. v should be a struct of the request's meaningful
// fields (struct fields encode in declaration order, so the hash is stable).
func HashOf(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("idem: request not encodable: %v", err))
	}
	h := sha256.Sum256(b)
	return h[:]
}

// ErrConflict is returned (wrapped) when a client id comes back with a different request.
var ErrConflict = apperr.New(apperr.IdempotencyConflict, "id was used with a different request")

// Do runs work once per request in tx. If the request was answered before, Do returns that answer
// (decoded into T) with replayed true and does not call work. Otherwise it claims the client id
// (a concurrent duplicate waits for this transaction, then replays), runs work, and stores its
// answer with the claim. If work fails, the caller rolls tx back and the claim goes with it.
func Do[T any](ctx context.Context, tx pgx.Tx, req Request, work func() (T, error)) (out T, replayed bool, err error) {
	q := store.New(tx)
	_, err = q.IdempotencyClaim(ctx, sqlc.IdempotencyClaimParams{Scope: req.Scope, Key: req.Key, RequestHash: req.Hash})
	if errors.Is(err, pgx.ErrNoRows) {
		// Taken, by a transaction that has committed (the insert waited for it to end).
		prev, err := q.IdempotencyGet(ctx, sqlc.IdempotencyGetParams{Scope: req.Scope, Key: req.Key})
		if err != nil {
			return out, false, fmt.Errorf("read %s %q: %w", req.Scope, req.Key, err)
		}
		out, err = replay[T](req, prev)
		return out, err == nil, err
	}
	if err != nil {
		return out, false, fmt.Errorf("claim %s %q: %w", req.Scope, req.Key, err)
	}
	if out, err = work(); err != nil {
		return out, false, err
	}
	answer, err := json.Marshal(out)
	if err != nil {
		return out, false, fmt.Errorf("encode answer of %s %q: %w", req.Scope, req.Key, err)
	}
	if err := q.IdempotencyComplete(ctx, sqlc.IdempotencyCompleteParams{Scope: req.Scope, Key: req.Key, Answer: answer}); err != nil {
		return out, false, fmt.Errorf("store answer of %s %q: %w", req.Scope, req.Key, err)
	}
	out, err = decoded[T](req, answer)
	return out, false, err
}

// replay is the answer to a request sent before: its stored answer if the request is the same,
// a conflict if not.
func replay[T any](req Request, prev sqlc.IdempotencyGetRow) (T, error) {
	var out T
	if !bytes.Equal(prev.RequestHash, req.Hash) {
		return out, fmt.Errorf("%w: %s %q was sent before with a different body", ErrConflict, req.Scope, req.Key)
	}
	return decoded[T](req, prev.Answer)
}

// decoded is the stored bytes decoded: what a replay will answer, so the first answer is the same.
func decoded[T any](req Request, answer []byte) (T, error) {
	var out T
	if err := json.Unmarshal(answer, &out); err != nil {
		return out, fmt.Errorf("stored answer of %s %q: %w", req.Scope, req.Key, err)
	}
	return out, nil
}

// DoAfterLock is Do for requests whose duplicates a lock already serialises (a withdrawal takes
// its member's row lock first): reads start with that lock, then the stored answer is looked up,
// and a new request's answer is written once, with work's last writes (keep), instead of claimed
// first and completed after. A concurrent duplicate that the lock does not serialise (the same id
// for another member) collides on the primary key; the collision is retryable
// (store.ErrRetryable), and the retried transaction sees the first request and answers as Do does.
func DoAfterLock[T any](ctx context.Context, tx pgx.Tx, req Request, lockThenReads []func(q *store.Queries) error,
	work func(keep func(T)) (T, error)) (out T, replayed bool, err error) {
	var prev sqlc.IdempotencyGetRow
	found := false
	steps := append(append([]func(q *store.Queries) error(nil), lockThenReads...), func(q *store.Queries) error {
		r, err := q.IdempotencyGet(ctx, sqlc.IdempotencyGetParams{Scope: req.Scope, Key: req.Key})
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		prev, found = r, err == nil
		return err
	})
	if err := store.Pipelined(ctx, tx, steps...); err != nil {
		return out, false, fmt.Errorf("read %s %q: %w", req.Scope, req.Key, err)
	}
	if found {
		out, err = replay[T](req, prev)
		return out, err == nil, err
	}
	var kept []byte
	var keptDone func() error
	var keepErr error
	keep := func(v T) {
		if kept, keepErr = json.Marshal(v); keepErr != nil {
			return
		}
		keptDone = store.SendAhead(ctx, tx, func(q *store.Queries) error {
			return q.IdempotencyInsert(ctx, sqlc.IdempotencyInsertParams{Scope: req.Scope, Key: req.Key, RequestHash: req.Hash, Answer: kept})
		})
	}
	out, err = work(keep)
	if keptDone != nil {
		// The answer's insert went first in its round trip: its error (a duplicate id) is the one
		// that explains any error of the statements after it.
		if kerr := keptDone(); kerr != nil {
			return out, false, fmt.Errorf("record %s %q: %w", req.Scope, req.Key, store.InterpretError(kerr))
		}
	}
	if err != nil {
		return out, false, err
	}
	if keepErr != nil {
		return out, false, fmt.Errorf("encode answer of %s %q: %w", req.Scope, req.Key, keepErr)
	}
	if kept == nil {
		return out, false, fmt.Errorf("%s %q: the work kept no answer", req.Scope, req.Key)
	}
	out, err = decoded[T](req, kept)
	return out, false, err
}
