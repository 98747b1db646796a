package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// errPipelineExecOnly is what a Pipeline answers to a query that returns rows.
var errPipelineExecOnly = errors.New("store: a Pipeline queues :exec queries only")

// Pipeline collects the statements of generated :exec queries and sends them in one round trip
// (Send), in the order they were called, in the transaction it was made for. A write phase of
// several independent statements then costs one round trip instead of one each, which matters most
// while the transaction holds contended row locks.
type Pipeline struct {
	tx    pgx.Tx
	batch pgx.Batch
}

// NewPipeline starts collecting statements for tx.
func NewPipeline(tx pgx.Tx) *Pipeline { return &Pipeline{tx: tx} }

// Queries are the generated queries that queue on the pipeline (only :exec ones may be called).
func (p *Pipeline) Queries() *Queries { return New(p) }

// Exec queues the statement; its error, if any, comes from Send.
func (p *Pipeline) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	p.batch.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

// Query is refused: a queued statement's rows would be read after the caller needs them.
func (p *Pipeline) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, errPipelineExecOnly
}

// QueryRow is refused, as Query.
func (p *Pipeline) QueryRow(context.Context, string, ...any) pgx.Row { return errRow{} }

// Send runs the queued statements and then the steps (as Pipelined runs them), in one round trip,
// and returns the first error (the transaction is then aborted).
func (p *Pipeline) Send(ctx context.Context, then ...func(q *Queries) error) error {
	queued := p.batch.Len()
	rec := &recorder{batch: p.batch}
	p.batch = pgx.Batch{}
	if err := rec.record(then); err != nil {
		return err
	}
	if rec.batch.Len() == 0 {
		return nil
	}
	br := p.tx.SendBatch(ctx, &rec.batch)
	var first error
	for range queued {
		if _, err := br.Exec(); err != nil && first == nil {
			first = err
		}
	}
	if err := readSteps(br, then); err != nil && first == nil {
		first = err
	}
	if err := br.Close(); err != nil && first == nil {
		first = err
	}
	return first
}

type errRow struct{}

func (errRow) Scan(...any) error { return errPipelineExecOnly }

// Pipelined runs generated queries in one round trip. Each step calls exactly one generated query
// on the Queries it is given, and is called twice: first to record the query's statement, then,
// once every statement has run, to read its result (the generated code scans the pipelined rows).
// A step must therefore do the same on both calls and keep only the second call's result. Steps
// run in order, each statement with its own snapshot, as they would one by one.
func Pipelined(ctx context.Context, tx pgx.Tx, steps ...func(q *Queries) error) error {
	return NewPipeline(tx).Send(ctx, steps...)
}

// errRecorded stops a step's first call once its statement is recorded.
var errRecorded = errors.New("store: statement recorded")

type recorder struct{ batch pgx.Batch }

func (r *recorder) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	r.batch.Queue(sql, args...)
	return pgconn.CommandTag{}, errRecorded
}

func (r *recorder) Query(_ context.Context, sql string, args ...any) (pgx.Rows, error) {
	r.batch.Queue(sql, args...)
	return nil, errRecorded
}

func (r *recorder) QueryRow(_ context.Context, sql string, args ...any) pgx.Row {
	r.batch.Queue(sql, args...)
	return errRow{}
}

// record queues each step's statement; a step must send exactly one.
func (r *recorder) record(steps []func(q *Queries) error) error {
	for i, step := range steps {
		before := r.batch.Len()
		_ = step(New(r))
		if r.batch.Len() != before+1 {
			return fmt.Errorf("store: pipelined step %d sent %d statements, want 1", i, r.batch.Len()-before)
		}
	}
	return nil
}

// readSteps lets each step read its statement's result from br, in order, and returns the first
// error; every step reads, so the results stay aligned after a failure.
func readSteps(br pgx.BatchResults, steps []func(q *Queries) error) error {
	rd := &reader{br: br}
	var first error
	for _, step := range steps {
		if err := step(New(rd)); err != nil && first == nil {
			first = err
		}
	}
	return first
}

type reader struct{ br pgx.BatchResults }

func (r *reader) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) { return r.br.Exec() }
func (r *reader) Query(context.Context, string, ...any) (pgx.Rows, error)         { return r.br.Query() }
func (r *reader) QueryRow(context.Context, string, ...any) pgx.Row                { return r.br.QueryRow() }
