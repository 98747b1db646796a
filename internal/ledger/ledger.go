package ledger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/rebate-ledger/rebate/internal/metrics"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// MaxTxAttempts bounds how often Transact runs a transaction that hit a deadlock or serialization
// failure: retrying forever would hide a lock-order bug behind latency.
const MaxTxAttempts = 5

// Ledger writes and reads the journal.
type Ledger struct {
	pool *pgxpool.Pool
	// cache holds committed accounts (accountCache).
	cache accountCache
}

type account struct {
	id   int64
	code string
	cur  money.Currency
	spec AccountSpec
}

type accountKey struct {
	code string
	cur  money.Currency
}

// New returns a ledger on pool.
func New(pool *pgxpool.Pool) *Ledger { return &Ledger{pool: pool} }

// Pool is the ledger's connection pool.
func (l *Ledger) Pool() *pgxpool.Pool { return l.pool }

// Transact runs fn in a transaction, and runs it again (up to MaxTxAttempts in all) when the
// transaction fails with a deadlock or serialization failure. fn must be safe to repeat: it sees a
// fresh transaction each time.
func (l *Ledger) Transact(ctx context.Context, fn func(tx pgx.Tx) error) error {
	var err error
	for attempt := 1; attempt <= MaxTxAttempts; attempt++ {
		err = store.WithTx(ctx, l.pool, fn)
		if err == nil || !store.IsRetryable(err) {
			return err
		}
		metrics.TxRetried()
		time.Sleep(time.Duration(rand.IntN(5*attempt)+1) * time.Millisecond)
	}
	return fmt.Errorf("%w after %d attempts: %w", ErrTooManyRetries, MaxTxAttempts, err)
}

// PostTx writes one entry in its own transaction (retried on deadlock).
func (l *Ledger) PostTx(ctx context.Context, req EntryRequest) (Entry, error) {
	var e Entry
	err := l.Transact(ctx, func(tx pgx.Tx) error {
		var err error
		e, err = l.Post(ctx, tx, req)
		return err
	})
	return e, err
}

// Post writes one entry inside the caller's transaction, so the caller can add its own rows and
// River jobs atomically with it. A replay of the same key and request returns the original entry
// with Replayed set and writes nothing.
func (l *Ledger) Post(ctx context.Context, tx pgx.Tx, req EntryRequest) (Entry, error) {
	es, err := l.PostMany(ctx, tx, []EntryRequest{req})
	if err != nil {
		return Entry{}, err
	}
	return es[0], nil
}

// PostMany writes several entries in the caller's transaction with a handful of statements in all:
// one insert for the entries and their postings, one balance update. Either all are written (or
// replayed) or, on error, the caller's transaction must be rolled back.
func (l *Ledger) PostMany(ctx context.Context, tx pgx.Tx, reqs []EntryRequest) ([]Entry, error) {
	w := l.NewWriter(tx)
	out, err := w.Add(ctx, reqs)
	if err != nil {
		return nil, err
	}
	return out, w.Flush(ctx)
}

// Writer writes entries in one transaction in several steps (so a later entry can refer to an
// earlier one's id) and applies all of their balance changes at once in Flush, in one sorted pass:
// a transaction that writes many entries locks each balance row once, in a fixed order, and cannot
// deadlock with another that does the same. Nothing is complete until Flush returns nil.
type Writer struct {
	l         *Ledger
	tx        pgx.Tx
	deltas    map[balanceKey]decimal.Decimal
	byID      map[int64]*account
	overdraft map[int64]bool
	posted    int
	replayed  int
}

// NewWriter starts writing entries in tx.
func (l *Ledger) NewWriter(tx pgx.Tx) *Writer {
	return &Writer{l: l, tx: tx, deltas: map[balanceKey]decimal.Decimal{}, byID: map[int64]*account{}, overdraft: map[int64]bool{}}
}

// Add writes the entries and their postings (one statement) and keeps their balance changes for
// Flush. A replay of a key with the same request returns the original entry with Replayed set.
func (w *Writer) Add(ctx context.Context, reqs []EntryRequest) ([]Entry, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	q := store.New(w.tx)
	hashes := make([][]byte, len(reqs))
	metas := make([][]byte, len(reqs))
	byKey := make(map[string]int, len(reqs))
	var keys []string
	for i := range reqs {
		r := &reqs[i]
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("entry %q: %w", r.Key, err)
		}
		if _, dup := byKey[r.Key]; dup {
			return nil, fmt.Errorf("%w: idempotency key %q appears twice in one batch", ErrInvalidEntry, r.Key)
		}
		byKey[r.Key] = i
		keys = append(keys, r.Key)
		meta, err := r.metadataJSON()
		if err != nil {
			return nil, err
		}
		metas[i] = meta
		hashes[i] = r.hash(meta)
	}
	accounts, err := w.l.resolveAccounts(ctx, w.tx, reqs)
	if err != nil {
		return nil, err
	}

	params := sqlc.EntryInsertManyParams{Keys: keys, Hashes: hashes, Metadatas: metas}
	for i := range reqs {
		r := &reqs[i]
		params.Kinds = append(params.Kinds, r.Kind)
		params.OccurredAts = append(params.OccurredAts, r.OccurredAt)
		params.RefersTos = append(params.RefersTos, r.RefersTo)
		for _, p := range r.Postings {
			a := accounts[accountKey{p.Account, p.Amount.Currency()}]
			params.PostingKeys = append(params.PostingKeys, r.Key)
			params.AccountIds = append(params.AccountIds, a.id)
			params.Currencies = append(params.Currencies, string(a.cur))
			params.Sides = append(params.Sides, string(p.Side))
			params.Amounts = append(params.Amounts, p.Amount.Decimal())
		}
	}
	inserted, err := q.EntryInsertMany(ctx, params)
	if err != nil {
		return nil, fmt.Errorf("insert entries: %w", store.InterpretError(err))
	}

	out := make([]Entry, len(reqs))
	written := make([]bool, len(reqs))
	for _, row := range inserted {
		i := byKey[row.IdempotencyKey]
		written[i] = true
		r := &reqs[i]
		out[i] = Entry{ID: row.ID, Key: r.Key, Kind: r.Kind, OccurredAt: r.OccurredAt.UTC().Truncate(time.Microsecond),
			RecordedAt: row.RecordedAt, Metadata: metas[i], RefersTo: r.RefersTo}
	}
	if len(inserted) < len(reqs) {
		if err := w.l.loadReplays(ctx, q, reqs, hashes, written, out); err != nil {
			return nil, err
		}
	}

	shardOf := map[int64]int16{}
	for _, a := range accounts {
		w.byID[a.id] = a
	}
	for i := range reqs {
		if !written[i] {
			continue
		}
		r := &reqs[i]
		for _, p := range r.Postings {
			a := accounts[accountKey{p.Account, p.Amount.Currency()}]
			out[i].Postings = append(out[i].Postings, Posting{Account: p.Account, Side: p.Side, Amount: p.Amount})
			shard, ok := shardOf[a.id]
			if !ok {
				// A hot account's row is picked by the database connection's backend pid: one
				// transaction always uses the same row (it never holds two rows of one hot
				// account), and concurrent transactions, on different connections, mostly use
				// different rows.
				if a.spec.Shards > 1 {
					shard = int16(uint32(w.tx.Conn().PgConn().PID()) % uint32(a.spec.Shards))
				}
				shardOf[a.id] = shard
			}
			k := balanceKey{a.id, shard}
			delta := p.Amount.Decimal()
			if (p.Side == Debit) != a.spec.Kind.DebitNormal() {
				delta = delta.Neg()
			}
			w.deltas[k] = w.deltas[k].Add(delta)
		}
		for _, code := range r.AllowOverdraft {
			for _, a := range accounts {
				if a.code == code {
					w.overdraft[a.id] = true
				}
			}
		}
	}
	w.posted += len(inserted)
	w.replayed += len(reqs) - len(inserted)
	return out, nil
}

// Flush applies the balance changes of every entry added so far.
func (w *Writer) Flush(ctx context.Context) error {
	if len(w.deltas) > 0 {
		if err := applyDeltas(ctx, w.tx, w.deltas, w.byID, w.overdraft); err != nil {
			return err
		}
	}
	metrics.EntriesPosted(false, w.posted)
	metrics.EntriesPosted(true, w.replayed)
	w.deltas, w.posted, w.replayed = map[balanceKey]decimal.Decimal{}, 0, 0
	return nil
}

type balanceKey struct {
	account int64
	shard   int16
}

// pipelineRows is the most balance rows applyDeltas updates one statement each (in one pipelined
// round trip); more are locked in order and updated with one statement, which is cheaper from three
// rows on.
const pipelineRows = 2

// applyDeltas updates the cached balances in (account, shard) order, and refuses an overdraft of a
// member's available balance that the entries did not allow. Accounts that may never go negative
// are guarded by the database's CHECK as well.
func applyDeltas(ctx context.Context, tx pgx.Tx, deltas map[balanceKey]decimal.Decimal,
	byID map[int64]*account, overdraft map[int64]bool) error {
	q := store.New(tx)
	keys := make([]balanceKey, 0, len(deltas))
	for k := range deltas {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b balanceKey) int {
		return cmp.Or(cmp.Compare(a.account, b.account), cmp.Compare(a.shard, b.shard))
	})
	check := func(k balanceKey, balance decimal.Decimal, err error) error {
		a := byID[k.account]
		switch {
		case err != nil:
			err = store.InterpretError(err)
			if errors.Is(err, store.ErrNegativeBalance) {
				return fmt.Errorf("%w: %s %s: %w", ErrInsufficientFunds, a.code, a.cur, err)
			}
			return fmt.Errorf("update balance of %s: %w", a.code, err)
		case a.spec.Shards > 1 || !balance.IsNegative() || overdraft[a.id] || !deltas[k].IsNegative():
			return nil
		default:
			return fmt.Errorf("%w: %s %s would be %s", ErrInsufficientFunds, a.code, a.cur, balance.StringFixed(a.cur.Scale()))
		}
	}
	if len(keys) <= pipelineRows {
		params := make([]sqlc.BalanceAddParams, len(keys))
		for i, k := range keys {
			params[i] = sqlc.BalanceAddParams{Delta: deltas[k], AccountID: k.account, Shard: k.shard}
		}
		var firstErr error
		q.BalanceAdd(ctx, params).QueryRow(func(i int, balance decimal.Decimal, err error) {
			if firstErr == nil {
				firstErr = check(keys[i], balance, err)
			}
		})
		return firstErr
	}
	var lock sqlc.BalanceLockManyParams
	add := sqlc.BalanceAddManyParams{}
	for _, k := range keys {
		lock.AccountIds = append(lock.AccountIds, k.account)
		lock.Shards = append(lock.Shards, k.shard)
		add.Deltas = append(add.Deltas, deltas[k])
	}
	add.AccountIds, add.Shards = lock.AccountIds, lock.Shards
	// One round trip; generic plans, because planning these array queries costs more than running them.
	var rows []sqlc.BalanceAddManyRow
	err := store.Pipelined(ctx, tx,
		func(q *store.Queries) error { return q.SessionGenericPlans(ctx) },
		func(q *store.Queries) error { return q.BalanceLockMany(ctx, lock) },
		func(q *store.Queries) (err error) { rows, err = q.BalanceAddMany(ctx, add); return err })
	if err != nil {
		err = store.InterpretError(err)
		if errors.Is(err, store.ErrNegativeBalance) {
			return fmt.Errorf("%w: %w", ErrInsufficientFunds, err)
		}
		return fmt.Errorf("update balances: %w", err)
	}
	if len(rows) != len(keys) {
		return fmt.Errorf("update balances: %d of %d balance rows found", len(rows), len(keys))
	}
	for _, row := range rows {
		if err := check(balanceKey{row.AccountID, row.Shard}, row.Balance, nil); err != nil {
			return err
		}
	}
	return nil
}

// resolveAccounts finds or creates every account the requests name: cached ones cost nothing,
// existing ones one query for all of them, and only accounts never seen before are created. An
// account created here belongs to the caller's transaction and is cached only once it is seen
// committed.
func (l *Ledger) resolveAccounts(ctx context.Context, tx pgx.Tx, reqs []EntryRequest) (map[accountKey]*account, error) {
	q := store.New(tx)
	out := map[accountKey]*account{}
	var missing []accountKey
	for i := range reqs {
		for _, p := range reqs[i].Postings {
			k := accountKey{p.Account, p.Amount.Currency()}
			if _, ok := out[k]; ok {
				continue
			}
			if a, ok := l.cache.get(k); ok {
				out[k] = a
				continue
			}
			out[k] = nil
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	codes := make([]string, len(missing))
	for i, k := range missing {
		codes[i] = k.code
	}
	var rows []sqlc.AccountListByCodesRow
	err := store.Pipelined(ctx, tx,
		func(q *store.Queries) error { return q.SessionGenericPlans(ctx) },
		func(q *store.Queries) (err error) { rows, err = q.AccountListByCodes(ctx, codes); return err })
	if err != nil {
		return nil, fmt.Errorf("read accounts: %w", err)
	}
	for _, row := range rows {
		k := accountKey{row.Code, money.Currency(row.Currency)}
		if v, ok := out[k]; ok && v == nil {
			a := &account{id: row.ID, code: row.Code, cur: k.cur, spec: AccountSpec{Kind: AccountKind(row.Kind), AllowNegative: row.AllowNegative, Shards: row.Shards}}
			out[k] = a
			if !row.CreatedHere {
				l.cache.put(a) // committed by someone else: safe to keep
			}
		}
	}
	// New accounts are created in a fixed order, so two transactions creating the same accounts
	// wait for each other instead of deadlocking on the unique index.
	slices.SortFunc(missing, func(a, b accountKey) int {
		return cmp.Or(cmp.Compare(a.code, b.code), cmp.Compare(a.cur, b.cur))
	})
	for _, k := range missing {
		if out[k] != nil {
			continue
		}
		a, err := l.findOrCreateAccount(ctx, q, k)
		if err != nil {
			return nil, err
		}
		out[k] = a
	}
	return out, nil
}

func (l *Ledger) findOrCreateAccount(ctx context.Context, q *store.Queries, k accountKey) (*account, error) {
	spec, err := Classify(k.code)
	if err != nil {
		return nil, err
	}
	id, err := q.AccountInsert(ctx, sqlc.AccountInsertParams{
		Code: k.code, Currency: string(k.cur), Kind: string(spec.Kind), AllowNegative: spec.AllowNegative, Shards: spec.Shards,
	})
	switch {
	case err == nil:
		err = q.BalanceShardsInsert(ctx, sqlc.BalanceShardsInsertParams{AccountID: id, AllowNegative: spec.AllowNegative, ShardCount: int32(spec.Shards)})
		if err != nil {
			return nil, fmt.Errorf("create balance rows of %s: %w", k.code, err)
		}
		return &account{id: id, code: k.code, cur: k.cur, spec: spec}, nil
	case errors.Is(err, pgx.ErrNoRows):
		// It existed: ON CONFLICT waited for its creator, so it is committed and safe to cache.
		row, err := q.AccountGetByCode(ctx, sqlc.AccountGetByCodeParams{Code: k.code, Currency: string(k.cur)})
		if err != nil {
			return nil, fmt.Errorf("read account %s: %w", k.code, err)
		}
		a := &account{id: row.ID, code: k.code, cur: k.cur, spec: AccountSpec{Kind: AccountKind(row.Kind), AllowNegative: row.AllowNegative, Shards: row.Shards}}
		l.cache.put(a)
		return a, nil
	default:
		return nil, fmt.Errorf("create account %s: %w", k.code, store.InterpretError(err))
	}
}

// loadReplays fills out the entries whose keys existed: same hash is a replay, else a conflict.
func (l *Ledger) loadReplays(ctx context.Context, q *store.Queries, reqs []EntryRequest, hashes [][]byte, written []bool, out []Entry) error {
	var keys []string
	idx := map[string]int{}
	for i := range reqs {
		if !written[i] {
			keys = append(keys, reqs[i].Key)
			idx[reqs[i].Key] = i
		}
	}
	rows, err := q.EntryGetByKeys(ctx, keys)
	if err != nil {
		return fmt.Errorf("read replayed entries: %w", err)
	}
	if len(rows) != len(keys) {
		return fmt.Errorf("read replayed entries: found %d of %d", len(rows), len(keys))
	}
	var ids []int64
	pos := map[int64]int{}
	for _, row := range rows {
		i := idx[row.IdempotencyKey]
		if !sameHash(row.RequestHash, hashes[i]) {
			return fmt.Errorf("%w: %q", ErrIdempotencyConflict, row.IdempotencyKey)
		}
		out[i] = Entry{ID: row.ID, Key: row.IdempotencyKey, Kind: row.Kind, OccurredAt: row.OccurredAt, RecordedAt: row.RecordedAt,
			Metadata: row.Metadata, RefersTo: deref(row.RefersTo), Replayed: true}
		ids = append(ids, row.ID)
		pos[row.ID] = i
	}
	postings, err := q.PostingListByEntries(ctx, ids)
	if err != nil {
		return fmt.Errorf("read replayed postings: %w", err)
	}
	for _, p := range postings {
		amt, err := money.New(p.Amount, money.Currency(p.Currency))
		if err != nil {
			return err
		}
		i := pos[p.EntryID]
		out[i].Postings = append(out[i].Postings, Posting{ID: p.ID, Account: p.Code, Side: Side(p.Side), Amount: amt})
	}
	return nil
}
