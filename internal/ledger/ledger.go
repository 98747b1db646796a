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

// PostMany writes several entries, their postings and their balance changes in the caller's
// transaction with one statement (EntryPostMany). Either all are written (or replayed) or, on error,
// the caller's transaction must be rolled back.
func (l *Ledger) PostMany(ctx context.Context, tx pgx.Tx, reqs []EntryRequest) ([]Entry, error) {
	return l.PostManyWith(ctx, tx, reqs, nil)
}

// PostManyWith is PostMany whose statement goes to the server in the same round trip as the first
// statement that with runs in tx, just before it (store.SendAhead): an accrual and its River job,
// say, cost one round trip instead of two. If the entries fail, their error is returned, not the
// one with's statements get from the aborted transaction; if with fails, its error is returned.
func (l *Ledger) PostManyWith(ctx context.Context, tx pgx.Tx, reqs []EntryRequest, with func() error) ([]Entry, error) {
	if len(reqs) == 0 {
		if with != nil {
			return nil, with()
		}
		return nil, nil
	}
	p, err := l.prepare(ctx, tx, reqs)
	if err != nil {
		return nil, err
	}
	// The statement applies the batch's net change per balance row, sorted (the fixed lock order),
	// when every entry is new. When a key is a replay it changes no balance, and the new entries'
	// changes are applied below instead.
	params := p.postParams()
	pid := uint32(tx.Conn().PgConn().PID())
	changes := make([]map[balanceKey]decimal.Decimal, len(reqs))
	total := map[balanceKey]decimal.Decimal{}
	for i := range reqs {
		changes[i] = p.balanceChanges(i, pid)
		for k, d := range changes[i] {
			total[k] = total[k].Add(d)
		}
	}
	for _, k := range sortedBalanceKeys(total) {
		params.DeltaAccountIds = append(params.DeltaAccountIds, k.account)
		params.DeltaShards = append(params.DeltaShards, k.shard)
		params.Deltas = append(params.Deltas, total[k].String())
	}
	rows, err, withErr := postEntries(ctx, tx, params, with)
	if err != nil {
		err = store.InterpretError(err)
		if errors.Is(err, store.ErrNegativeBalance) {
			return nil, fmt.Errorf("%w: %w", ErrInsufficientFunds, err)
		}
		return nil, fmt.Errorf("post entries: %w", err)
	}
	if withErr != nil {
		return nil, withErr
	}
	inserted := entryRows(rows)
	var balances []sqlc.EntryPostManyRow
	for _, r := range rows {
		if !r.IsEntry {
			balances = append(balances, r)
		}
	}
	out, written, err := l.results(ctx, tx, p, inserted)
	if err != nil {
		return nil, err
	}
	// deltas are the written entries' changes: the batch's total unless a key was a replay.
	replays := len(inserted) < len(reqs)
	deltas := total
	if replays {
		deltas = map[balanceKey]decimal.Decimal{}
	}
	overdraft := map[int64]bool{}
	for i := range reqs {
		if !written[i] {
			continue
		}
		if replays {
			for k, d := range changes[i] {
				deltas[k] = deltas[k].Add(d)
			}
		}
		p.allowOverdraft(i, overdraft)
	}
	check := func(k balanceKey, balance decimal.Decimal, err error) error {
		return checkBalance(p.byID[k.account], balance, deltas[k], overdraft[k.account], err)
	}
	switch {
	case !replays:
		if len(balances) != len(deltas) {
			return nil, fmt.Errorf("post entries: %d of %d balance rows found", len(balances), len(deltas))
		}
		for _, b := range balances {
			if err := check(balanceKey{b.AccountID, b.Shard}, b.Balance, nil); err != nil {
				return nil, err
			}
		}
	case len(balances) > 0:
		return nil, fmt.Errorf("post entries: %d balance rows changed for a batch with replays", len(balances))
	case len(deltas) > 0:
		steps, done := bulkBalanceSteps(ctx, sortedBalanceKeys(deltas), deltas, check)
		if err := done(store.Pipelined(ctx, tx, steps...)); err != nil {
			return nil, err
		}
	}
	metrics.EntriesPosted(false, len(inserted))
	metrics.EntriesPosted(true, len(reqs)-len(inserted))
	return out, nil
}

// postEntries runs EntryPostMany (EntryPostOne for a single entry: its plan is smaller, and a plan's
// every node is started on every execution) with a generic plan, in the same round trip as the setting that
// asks for it (SessionGenericPlans, which stays for the rest of the transaction, as in every write
// transaction). Left to itself PostgreSQL plans this statement again on every call, because a custom
// plan looks cheaper for one entry than a generic one does for an unknown number; planning it cost
// more server time than running it (docs/benchmarks.md). Both statements are sent ahead of the
// first statement with runs (store.SendAhead), or alone when with is nil. err is the entries'
// error; withErr is with's, which matters only when err is nil (if the entries failed, with's
// statements met an aborted transaction).
func postEntries(ctx context.Context, tx pgx.Tx, params sqlc.EntryPostManyParams, with func() error) (rows []sqlc.EntryPostManyRow, err, withErr error) {
	post := func(q *store.Queries) (err error) { rows, err = q.EntryPostMany(ctx, params); return err }
	if len(params.Keys) == 1 {
		one := postOneParams(params)
		post = func(q *store.Queries) error {
			got, err := q.EntryPostOne(ctx, one)
			for _, r := range got {
				rows = append(rows, sqlc.EntryPostManyRow(r))
			}
			return err
		}
	}
	done := store.SendAhead(ctx, tx,
		func(q *store.Queries) error { return q.SessionGenericPlans(ctx) },
		post)
	if with != nil {
		withErr = with()
	}
	return rows, done(), withErr
}

// postOneParams turns EntryPostMany's parameters for one entry into EntryPostOne's (the balance
// changes are already sorted by (account, shard), the order the statement locks their rows in).
func postOneParams(p sqlc.EntryPostManyParams) sqlc.EntryPostOneParams {
	return sqlc.EntryPostOneParams{Key: p.Keys[0], Hash: p.Hashes[0], Kind: p.Kinds[0], OccurredAt: p.OccurredAts[0],
		Metadata: p.Metadatas[0], RefersTo: p.RefersTos[0],
		AccountIds: p.AccountIds, Currencies: p.Currencies, Sides: p.Sides, Amounts: p.Amounts,
		DeltaAccountIds: p.DeltaAccountIds, DeltaShards: p.DeltaShards, Deltas: p.Deltas}
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
	return w.AddWith(ctx, reqs, nil)
}

// AddWith is Add whose statement goes to the server with the first statement with runs in the
// writer's transaction, as PostManyWith does.
func (w *Writer) AddWith(ctx context.Context, reqs []EntryRequest, with func() error) ([]Entry, error) {
	if len(reqs) == 0 {
		if with != nil {
			return nil, with()
		}
		return nil, nil
	}
	p, err := w.l.prepare(ctx, w.tx, reqs)
	if err != nil {
		return nil, err
	}
	// The entries statement with no balance changes: the writer applies them all at once in Flush.
	rows, err, withErr := postEntries(ctx, w.tx, p.postParams(), with)
	if err != nil {
		return nil, fmt.Errorf("insert entries: %w", store.InterpretError(err))
	}
	if withErr != nil {
		return nil, withErr
	}
	inserted := entryRows(rows)
	out, written, err := w.l.results(ctx, w.tx, p, inserted)
	if err != nil {
		return nil, err
	}
	for id, a := range p.byID {
		w.byID[id] = a
	}
	pid := uint32(w.tx.Conn().PgConn().PID())
	for i := range reqs {
		if !written[i] {
			continue
		}
		for k, d := range p.balanceChanges(i, pid) {
			w.deltas[k] = w.deltas[k].Add(d)
		}
		p.allowOverdraft(i, w.overdraft)
	}
	w.posted += len(inserted)
	w.replayed += len(reqs) - len(inserted)
	return out, nil
}

// prepared is a list of entry requests checked and hashed, with their accounts resolved and the
// insert's parameters built.
type prepared struct {
	reqs     []EntryRequest
	hashes   [][]byte
	metas    [][]byte
	byKey    map[string]int
	accounts map[accountKey]*account
	byID     map[int64]*account
	params   sqlc.EntryPostManyParams // without balance changes
}

// postParams is a copy of the insert's parameters, to which a caller may add balance changes.
func (p *prepared) postParams() sqlc.EntryPostManyParams { return p.params }

// entryRows are the entry rows of EntryPostMany's answer.
func entryRows(rows []sqlc.EntryPostManyRow) []sqlc.EntryPostManyRow {
	var out []sqlc.EntryPostManyRow
	for _, r := range rows {
		if r.IsEntry {
			out = append(out, r)
		}
	}
	return out
}

func (l *Ledger) prepare(ctx context.Context, tx pgx.Tx, reqs []EntryRequest) (*prepared, error) {
	p := &prepared{reqs: reqs, hashes: make([][]byte, len(reqs)), metas: make([][]byte, len(reqs)),
		byKey: make(map[string]int, len(reqs)), byID: map[int64]*account{}}
	keys := make([]string, 0, len(reqs))
	for i := range reqs {
		r := &reqs[i]
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("entry %q: %w", r.Key, err)
		}
		if _, dup := p.byKey[r.Key]; dup {
			return nil, fmt.Errorf("%w: idempotency key %q appears twice in one batch", ErrInvalidEntry, r.Key)
		}
		p.byKey[r.Key] = i
		keys = append(keys, r.Key)
		meta, err := r.metadataJSON()
		if err != nil {
			return nil, err
		}
		p.metas[i] = meta
		p.hashes[i] = r.hash(meta)
	}
	accounts, err := l.resolveAccounts(ctx, tx, reqs)
	if err != nil {
		return nil, err
	}
	p.accounts = accounts
	for _, a := range accounts {
		p.byID[a.id] = a
	}
	postings := 0
	for i := range reqs {
		postings += len(reqs[i].Postings)
	}
	p.params = sqlc.EntryPostManyParams{Keys: keys, Hashes: p.hashes, Metadatas: p.metas,
		Kinds: make([]string, 0, len(reqs)), OccurredAts: make([]time.Time, 0, len(reqs)), RefersTos: make([]int64, 0, len(reqs)),
		PostingEntries: make([]int32, 0, postings), AccountIds: make([]int64, 0, postings),
		Currencies: make([]string, 0, postings), Sides: make([]string, 0, postings), Amounts: make([]string, 0, postings)}
	for i := range reqs {
		r := &reqs[i]
		p.params.Kinds = append(p.params.Kinds, r.Kind)
		p.params.OccurredAts = append(p.params.OccurredAts, r.OccurredAt)
		p.params.RefersTos = append(p.params.RefersTos, r.RefersTo)
		for _, ps := range r.Postings {
			a := accounts[accountKey{ps.Account, ps.Amount.Currency()}]
			p.params.PostingEntries = append(p.params.PostingEntries, int32(i+1))
			p.params.AccountIds = append(p.params.AccountIds, a.id)
			p.params.Currencies = append(p.params.Currencies, string(a.cur))
			p.params.Sides = append(p.params.Sides, string(ps.Side))
			p.params.Amounts = append(p.params.Amounts, ps.Amount.String())
		}
	}
	return p, nil
}

// results turns the inserted rows into entries and reads the replayed ones (same key and hash: the
// original entry; a different hash: ErrIdempotencyConflict). written[i] says request i was inserted.
func (l *Ledger) results(ctx context.Context, tx pgx.Tx, p *prepared, inserted []sqlc.EntryPostManyRow) ([]Entry, []bool, error) {
	out := make([]Entry, len(p.reqs))
	written := make([]bool, len(p.reqs))
	for _, row := range inserted {
		i := p.byKey[row.IdempotencyKey]
		written[i] = true
		r := &p.reqs[i]
		out[i] = Entry{ID: row.ID, Key: r.Key, Kind: r.Kind, OccurredAt: r.OccurredAt.UTC().Truncate(time.Microsecond),
			RecordedAt: row.RecordedAt, Metadata: p.metas[i], RefersTo: r.RefersTo}
		for _, ps := range r.Postings {
			out[i].Postings = append(out[i].Postings, Posting{Account: ps.Account, Side: ps.Side, Amount: ps.Amount})
		}
	}
	if len(inserted) < len(p.reqs) {
		if err := l.loadReplays(ctx, store.New(tx), p.reqs, p.hashes, written, out); err != nil {
			return nil, nil, err
		}
	}
	return out, written, nil
}

// balanceChanges is request i's net change per balance row, on each account's normal side. A hot
// account's row is picked by the database connection's backend pid: one transaction always uses the
// same row (it never holds two rows of one hot account), and concurrent transactions, on different
// connections, mostly use different rows.
func (p *prepared) balanceChanges(i int, pid uint32) map[balanceKey]decimal.Decimal {
	out := map[balanceKey]decimal.Decimal{}
	for _, ps := range p.reqs[i].Postings {
		a := p.accounts[accountKey{ps.Account, ps.Amount.Currency()}]
		var shard int16
		if a.spec.Shards > 1 {
			shard = int16(pid % uint32(a.spec.Shards))
		}
		k := balanceKey{a.id, shard}
		delta := ps.Amount.Decimal()
		if (ps.Side == Debit) != a.spec.Kind.DebitNormal() {
			delta = delta.Neg()
		}
		out[k] = out[k].Add(delta)
	}
	return out
}

// allowOverdraft marks the accounts request i may take below zero.
func (p *prepared) allowOverdraft(i int, into map[int64]bool) {
	for _, code := range p.reqs[i].AllowOverdraft {
		for _, a := range p.accounts {
			if a.code == code {
				into[a.id] = true
			}
		}
	}
}

// FlushSteps is Flush as steps for a caller's store.Pipelined, so the balance statements share a
// round trip with the caller's own last writes (they must come last in it: the balance rows are the
// most contended locks). done takes the pipeline's error; the flush is complete when it returns nil.
func (w *Writer) FlushSteps(ctx context.Context) (steps []func(q *store.Queries) error, done func(error) error) {
	keys := sortedBalanceKeys(w.deltas)
	deltas, byID, overdraft := w.deltas, w.byID, w.overdraft
	check := func(k balanceKey, balance decimal.Decimal, err error) error {
		return checkBalance(byID[k.account], balance, deltas[k], overdraft[k.account], err)
	}
	posted, replayed := w.posted, w.replayed
	w.deltas, w.posted, w.replayed = map[balanceKey]decimal.Decimal{}, 0, 0
	var check2 func(error) error
	if len(keys) > 0 {
		steps, check2 = bulkBalanceSteps(ctx, keys, deltas, check)
	}
	return steps, func(err error) error {
		if check2 != nil {
			err = check2(err)
		}
		if err == nil {
			metrics.EntriesPosted(false, posted)
			metrics.EntriesPosted(true, replayed)
		}
		return err
	}
}

// Flush applies the balance changes of every entry added so far, in one round trip.
func (w *Writer) Flush(ctx context.Context) error {
	steps, done := w.FlushSteps(ctx)
	if len(steps) == 0 {
		return done(nil)
	}
	// Generic plans: planning these array queries costs more than running them.
	steps = append([]func(q *store.Queries) error{func(q *store.Queries) error { return q.SessionGenericPlans(ctx) }}, steps...)
	return done(store.Pipelined(ctx, w.tx, steps...))
}

type balanceKey struct {
	account int64
	shard   int16
}

// sortedBalanceKeys lists the balance rows of m in (account, shard) order, the order every writer
// locks them in.
func sortedBalanceKeys(m map[balanceKey]decimal.Decimal) []balanceKey {
	keys := make([]balanceKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b balanceKey) int {
		return cmp.Or(cmp.Compare(a.account, b.account), cmp.Compare(a.shard, b.shard))
	})
	return keys
}

// bulkBalanceSteps locks the rows in keys' order and adds their deltas, as two pipeline steps; done
// takes the pipeline's error and checks every updated row.
func bulkBalanceSteps(ctx context.Context, keys []balanceKey, deltas map[balanceKey]decimal.Decimal,
	check func(balanceKey, decimal.Decimal, error) error) (steps []func(q *store.Queries) error, done func(error) error) {
	var lock sqlc.BalanceLockManyParams
	add := sqlc.BalanceAddManyParams{}
	for _, k := range keys {
		lock.AccountIds = append(lock.AccountIds, k.account)
		lock.Shards = append(lock.Shards, k.shard)
		add.Deltas = append(add.Deltas, deltas[k])
	}
	add.AccountIds, add.Shards = lock.AccountIds, lock.Shards
	var rows []sqlc.BalanceAddManyRow
	steps = []func(q *store.Queries) error{
		func(q *store.Queries) error { return q.BalanceLockMany(ctx, lock) },
		func(q *store.Queries) (err error) { rows, err = q.BalanceAddMany(ctx, add); return err },
	}
	done = func(err error) error {
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
	return steps, done
}

// checkBalance turns a balance row's update into the ledger's error: the database refused it
// (err), or a member's available balance went below zero by a decrease the entries did not allow.
// Hot accounts are platform accounts that may go negative.
func checkBalance(a *account, balance, delta decimal.Decimal, overdraft bool, err error) error {
	switch {
	case err != nil:
		err = store.InterpretError(err)
		if errors.Is(err, store.ErrNegativeBalance) {
			return fmt.Errorf("%w: %s %s: %w", ErrInsufficientFunds, a.code, a.cur, err)
		}
		return fmt.Errorf("update balance of %s: %w", a.code, err)
	case a.spec.Shards > 1 || !balance.IsNegative() || overdraft || !delta.IsNegative():
		return nil
	default:
		return fmt.Errorf("%w: %s %s would be %s", ErrInsufficientFunds, a.code, a.cur, balance.StringFixed(a.cur.Scale()))
	}
}

// resolveAccounts finds or creates every account the requests name: cached ones cost nothing,
// existing ones one query for all of them, and only accounts never seen before are created. An
// account created here belongs to the caller's transaction and is cached only once it is seen
// committed.
func (l *Ledger) resolveAccounts(ctx context.Context, tx pgx.Tx, reqs []EntryRequest) (map[accountKey]*account, error) {
	q := store.New(tx)
	out := map[accountKey]*account{}
	for i := range reqs {
		for _, p := range reqs[i].Postings {
			out[accountKey{p.Account, p.Amount.Currency()}] = nil
		}
	}
	missing := l.cache.fill(out)
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
