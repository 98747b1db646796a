package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// lazyTx is a transaction whose BEGIN is sent in the same round trip as its first statement, with
// pgx's Batch.BeginTx, instead of in a round trip of its own. From the first statement on it is
// pgx's own transaction (commit, rollback, savepoints, errors). A transaction that ran no statement
// commits and rolls back without talking to the server. Statements queued with SendAhead go to the
// server with the next statement sent, in the same round trip.
//
// A short write transaction is three or four round trips (BEGIN, one or two statements, COMMIT), so
// this removes a quarter to a half of them; where the database and the service share the CPU, each
// round trip costs both sides system calls and a wake-up (docs/benchmarks.md).
type lazyTx struct {
	conn *pgx.Conn
	// tx is nil until the first statement has been sent.
	tx pgx.Tx
	// closed: committed or rolled back before any statement was sent.
	closed bool
	// ahead are the groups of statements waiting for the next round trip.
	ahead []*aheadGroup
}

var _ pgx.Tx = (*lazyTx)(nil)

// aheadGroup is one SendAhead call: its statements, the steps that read their results, and the
// first error once they are read.
type aheadGroup struct {
	batch pgx.Batch
	steps []func(q *Queries) error
	sent  bool
	err   error
}

// SendAhead queues generated queries (each step calls exactly one, as in Pipelined) to be sent with
// the next statement tx runs, in the same round trip and before it; done reads their results, first
// sending them alone if nothing was sent since, and returns their first error. If one of them fails,
// the statements sent with them fail too (the transaction is aborted): the caller should report
// done's error rather than theirs. On a transaction WithTx did not make, the queries run at once.
func SendAhead(ctx context.Context, tx pgx.Tx, steps ...func(q *Queries) error) (done func() error) {
	t, ok := tx.(*lazyTx)
	if !ok || t.closed {
		err := Pipelined(ctx, tx, steps...)
		return func() error { return err }
	}
	rec := &recorder{}
	if err := rec.record(steps); err != nil {
		return func() error { return err }
	}
	g := &aheadGroup{steps: steps, batch: rec.batch}
	t.ahead = append(t.ahead, g)
	return func() error {
		if !g.sent {
			if err := t.flush(ctx); err != nil && g.err == nil {
				g.err = err
			}
		}
		return g.err
	}
}

// begun returns the transaction, with the statements waiting to go ahead sent: for the uses that
// cannot carry them (COPY, a savepoint, a statement without parameters, which may hold several
// statements and is sent with the simple protocol).
func (t *lazyTx) begun(ctx context.Context) (pgx.Tx, error) {
	if t.closed {
		return nil, pgx.ErrTxClosed
	}
	if t.tx == nil && len(t.ahead) == 0 {
		tx, err := t.conn.Begin(ctx)
		if err != nil {
			return nil, err
		}
		t.tx = tx
	}
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	return t.tx, nil
}

// flush sends the statements waiting to go ahead (and BEGIN, if not yet sent) alone.
func (t *lazyTx) flush(ctx context.Context) error {
	if len(t.ahead) == 0 {
		return nil
	}
	return t.send(ctx, &pgx.Batch{}).Close()
}

// send sends b's statements in one round trip, after BEGIN if no statement has been sent yet and
// after the statements waiting to go ahead, whose results it reads; it returns b's results.
func (t *lazyTx) send(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if t.closed {
		return pgx.FailedBatchResults(b, pgx.ErrTxClosed)
	}
	if t.tx != nil && len(t.ahead) == 0 {
		return t.tx.SendBatch(ctx, b)
	}
	all := &pgx.Batch{}
	begin := t.tx == nil
	if begin {
		all.BeginTx(pgx.TxOptions{})
	}
	ahead := t.ahead
	t.ahead = nil
	for _, g := range ahead {
		all.QueuedQueries = append(all.QueuedQueries, g.batch.QueuedQueries...)
	}
	all.QueuedQueries = append(all.QueuedQueries, b.QueuedQueries...)
	var br pgx.BatchResults
	if begin {
		br = t.conn.SendBatch(ctx, all)
		t.tx = br.Tx()
	} else {
		br = t.tx.SendBatch(ctx, all)
	}
	var first error
	if begin {
		if _, err := br.Exec(); err != nil {
			first = fmt.Errorf("begin: %w", err)
		}
	}
	for _, g := range ahead {
		g.sent = true
		if g.err = readSteps(br, g.steps); g.err == nil {
			g.err = first
		}
	}
	if first != nil {
		_ = br.Close()
		return pgx.FailedBatchResults(b, first)
	}
	return br
}

func (t *lazyTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if (t.tx != nil && len(t.ahead) == 0) || len(args) == 0 {
		tx, err := t.begun(ctx)
		if err != nil {
			return pgconn.CommandTag{}, err
		}
		return tx.Exec(ctx, sql, args...)
	}
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	br := t.send(ctx, b)
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

func (t *lazyTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if t.tx != nil && len(t.ahead) == 0 {
		return t.tx.Query(ctx, sql, args...)
	}
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	br := t.send(ctx, b)
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return rows, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

func (t *lazyTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := t.Query(ctx, sql, args...)
	return firstRow{rows: rows, err: err}
}

func (t *lazyTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return t.send(ctx, b)
}

func (t *lazyTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	tx, err := t.begun(ctx)
	if err != nil {
		return 0, err
	}
	return tx.CopyFrom(ctx, table, columns, src)
}

func (t *lazyTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	tx, err := t.begun(ctx)
	if err != nil {
		return nil, err
	}
	return tx.Prepare(ctx, name, sql)
}

// LargeObjects begins the transaction first if no statement has (large objects live in one).
// Nothing in this service stores large objects; as the method cannot return an error, a failure to
// begin panics.
func (t *lazyTx) LargeObjects() pgx.LargeObjects {
	tx, err := t.begun(context.Background())
	if err != nil {
		panic(fmt.Sprintf("store: begin for large objects: %v", err))
	}
	return tx.LargeObjects()
}

func (t *lazyTx) Conn() *pgx.Conn { return t.conn }

// Begin makes a savepoint (pgx's nested transaction).
func (t *lazyTx) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := t.begun(ctx)
	if err != nil {
		return nil, err
	}
	return tx.Begin(ctx)
}

// Commit sends the statements waiting to go ahead first: their errors are the commit's.
func (t *lazyTx) Commit(ctx context.Context) error {
	if err := t.flush(ctx); err != nil {
		if t.tx != nil {
			_ = t.tx.Rollback(ctx)
		}
		return err
	}
	if t.tx != nil {
		return t.tx.Commit(ctx)
	}
	if t.closed {
		return pgx.ErrTxClosed
	}
	t.closed = true
	return nil
}

// Rollback drops the statements waiting to go ahead: their done reports the rollback.
func (t *lazyTx) Rollback(ctx context.Context) error {
	for _, g := range t.ahead {
		g.sent, g.err = true, errRolledBackAhead
	}
	t.ahead = nil
	if t.tx != nil {
		return t.tx.Rollback(ctx)
	}
	if t.closed {
		return pgx.ErrTxClosed
	}
	t.closed = true
	return nil
}

// errRolledBackAhead is what done answers for statements dropped by a rollback before being sent.
var errRolledBackAhead = errors.New("store: transaction rolled back before the statements sent ahead")

// batchRows are the rows of a statement sent with BEGIN: when they are read or closed, the rest of
// the batch is read too, so the connection is free for the next statement.
type batchRows struct {
	pgx.Rows
	br  pgx.BatchResults
	err error
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.finish()
	return false
}

func (r *batchRows) Close() {
	r.Rows.Close()
	r.finish()
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

func (r *batchRows) finish() {
	if r.br == nil {
		return
	}
	r.Rows.Close()
	r.err = r.br.Close()
	r.br = nil
}

// firstRow is QueryRow's answer: the first row, as pgx's own.
type firstRow struct {
	rows pgx.Rows
	err  error
}

func (r firstRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}
