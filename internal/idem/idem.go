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

// Outcome is one request's answer from DoManyAfterLock: its value, whether it replays a stored
// answer, or why it was refused.
type Outcome[T any] struct {
	Value    T
	Replayed bool
	Err      error
}

// DoManyAfterLock is Do for a group of requests of one scope decided together in one transaction,
// whose duplicates a lock already serialises (a withdrawal takes its member's row lock first).
// The reads start with the locks, then the stored answers of every key are looked up, in the same
// round trip. A request answered before replays (or is an idempotency_conflict) without reaching
// work; work decides the others (fresh, indexes into reqs, in order) and answers each with a value
// or its own refusal. Before its first write it hands the values it accepts to keep, which writes
// them in one statement that goes to the server with work's writes, instead of claiming each key
// first and completing it after. Keys must be distinct (a caller splits its group at a repeat, so
// the repeat sees the first committed). A concurrent duplicate that the locks do not serialise (the
// same id for another member) collides on the primary key; the collision is retryable
// (store.ErrRetryable), and the retried transaction sees the first request and answers as Do does.
// An error from work (or from the reads) is the whole group's: the caller rolls tx back.
func DoManyAfterLock[T any](ctx context.Context, tx pgx.Tx, reqs []Request, lockThenReads []func(q *store.Queries) error,
	work func(fresh []int, keep func(accepted map[int]T)) (refused map[int]error, err error)) ([]Outcome[T], error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	scope := reqs[0].Scope
	keys := make([]string, len(reqs))
	at := make(map[string]int, len(reqs))
	for i, r := range reqs {
		if _, dup := at[r.Key]; dup || r.Scope != scope {
			return nil, fmt.Errorf("idem: a group needs distinct keys of one scope (%s %q)", r.Scope, r.Key)
		}
		keys[i], at[r.Key] = r.Key, i
	}
	var stored []sqlc.IdempotencyGetManyRow
	steps := append(append([]func(q *store.Queries) error(nil), lockThenReads...), func(q *store.Queries) (err error) {
		stored, err = q.IdempotencyGetMany(ctx, sqlc.IdempotencyGetManyParams{Scope: scope, Keys: keys})
		return err
	})
	if err := store.Pipelined(ctx, tx, steps...); err != nil {
		return nil, fmt.Errorf("read %s: %w", scope, err)
	}
	out := make([]Outcome[T], len(reqs))
	answered := make([]bool, len(reqs))
	for _, prev := range stored {
		i := at[prev.Key]
		v, err := replay[T](reqs[i], sqlc.IdempotencyGetRow{RequestHash: prev.RequestHash, Answer: prev.Answer})
		out[i], answered[i] = Outcome[T]{Value: v, Replayed: err == nil, Err: err}, true
	}
	var fresh []int
	for i := range reqs {
		if !answered[i] {
			fresh = append(fresh, i)
		}
	}
	if len(fresh) == 0 {
		return out, nil
	}
	kept := map[int][]byte{}
	var keptDone func() error
	var keepErr error
	keep := func(accepted map[int]T) {
		p := sqlc.IdempotencyInsertManyParams{Scope: scope}
		for _, i := range fresh {
			v, ok := accepted[i]
			if !ok {
				continue
			}
			b, err := json.Marshal(v)
			if err != nil {
				keepErr = fmt.Errorf("encode answer of %s %q: %w", scope, reqs[i].Key, err)
				return
			}
			kept[i] = b
			p.Keys, p.Hashes, p.Answers = append(p.Keys, reqs[i].Key), append(p.Hashes, reqs[i].Hash), append(p.Answers, b)
		}
		if len(p.Keys) > 0 {
			keptDone = store.SendAhead(ctx, tx, func(q *store.Queries) error { return q.IdempotencyInsertMany(ctx, p) })
		}
	}
	refused, err := work(fresh, keep)
	if keptDone != nil {
		if kerr := keptDone(); kerr != nil && err == nil {
			err = fmt.Errorf("record %s: %w", scope, store.InterpretError(kerr))
		}
	}
	if err == nil {
		err = keepErr
	}
	if err != nil {
		return nil, err
	}
	for _, i := range fresh {
		if e, ok := refused[i]; ok {
			out[i].Err = e
			continue
		}
		b, ok := kept[i]
		if !ok {
			return nil, fmt.Errorf("%s %q: neither refused nor kept", scope, reqs[i].Key)
		}
		v, err := decoded[T](reqs[i], b)
		if err != nil {
			return nil, err
		}
		out[i].Value = v
	}
	return out, nil
}
