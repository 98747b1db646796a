package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rebate-ledger/rebate/internal/ledger"
)

// benchExportCmd builds a journal of --postings postings through the project's own batch path
// (ledger.PostMany, 100 entries a transaction, every trigger and the sealer as in service), then
// times `rebate export --format jsonl` to a file in a subprocess (its peak RSS is the export's),
// PostgreSQL's own COPY of the same rows in chain order, and `rebate verify --file` on the export.
func benchExportCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench export", stderr)
	dbURL := databaseFlag(fs)
	postings := fs.Int("postings", 10_000_000, "postings the journal holds before the export (4 per entry); an existing journal counts")
	members := fs.Int("members", 100_000, "member accounts the entries credit")
	writers := fs.Int("writers", 4, "concurrent writers while building")
	dir := fs.String("dir", "", "where the export file goes (default: a temporary directory, removed afterwards)")
	pool, err := benchDatabase(ctx, fs, dbURL, args, writers, func() error {
		if *postings < 4 || *members < 3 || *writers < 1 {
			return errors.New("--postings at least 4, --members at least 3, --writers at least 1")
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := benchAccounts(ctx, pool, *members); err != nil {
		return err
	}
	l := ledger.New(pool)
	if err := buildJournal(ctx, pool, l, int64(*postings), *members, *writers, stderr); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: sealing what is left\n")
	for {
		if _, err := l.SealAll(ctx); err != nil {
			return err
		}
		n, err := l.Unsealed(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := analyze(ctx, pool); err != nil {
		return err
	}
	var total int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM postings`).Scan(&total); err != nil {
		return err
	}

	out := *dir
	if out == "" {
		if out, err = os.MkdirTemp("", "rebate-export-"); err != nil {
			return err
		}
		defer os.RemoveAll(out)
	}
	file := filepath.Join(out, "journal.jsonl")
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: exporting %d postings (rebate export, a subprocess)\n", total)
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, self, "export", "--database-url", *dbURL, "--out", file)
	var exportErr bytes.Buffer
	cmd.Stderr = &exportErr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("rebate export: %w: %s", err, exportErr.String())
	}
	exportSecs := time.Since(t0).Seconds()
	// The export reports its own peak resident memory (VmHWM) as it ends.
	var peakMB float64
	if m := regexp.MustCompile(`peak_rss_mb=([0-9]+)`).FindStringSubmatch(exportErr.String()); m != nil {
		peakMB, _ = strconv.ParseFloat(m[1], 64)
	}

	fmt.Fprintf(stderr, "bench: COPY of the same rows in chain order\n")
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	t0 = time.Now()
	tag, err := conn.Conn().PgConn().CopyTo(ctx, io.Discard, `COPY (
		SELECT s.seq, s.prev_hash, s.hash, e.id, e.idempotency_key, e.kind, e.occurred_at, e.recorded_at, e.metadata, e.refers_to,
		       a.code, p.currency, p.side, p.amount
		FROM entry_seals s
		JOIN entries e ON e.id = s.entry_id
		JOIN postings p ON p.entry_id = e.id
		JOIN accounts a ON a.id = p.account_id
		ORDER BY s.seq, p.id) TO STDOUT`)
	conn.Release()
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	copySecs := time.Since(t0).Seconds()

	fmt.Fprintf(stderr, "bench: rebate verify --file (offline)\n")
	t0 = time.Now()
	vcmd := exec.CommandContext(ctx, self, "verify", "--file", file)
	vcmd.Stdout = io.Discard
	if err := vcmd.Run(); err != nil {
		return fmt.Errorf("rebate verify --file: %w", err)
	}
	verifySecs := time.Since(t0).Seconds()

	exportRate, copyRate := float64(total)/exportSecs, float64(tag.RowsAffected())/copySecs
	fmt.Fprintf(stdout, "postings=%d export_s=%.1f copy_s=%.1f verify_s=%.1f verify_postings/s=%.0f\n",
		total, exportSecs, copySecs, verifySecs, float64(total)/verifySecs)
	fmt.Fprintf(stdout, "export postings/s=%.0f copy_rows/s=%.0f ratio=%.2f peak_rss_mb=%.0f\n", exportRate, copyRate, exportRate/copyRate, peakMB)
	return nil
}

// buildJournal writes rebate-shaped entries of four postings through the batch path (ledger.PostMany,
// 100 entries a transaction, writers at once, the sealer following as in the service) until the
// journal holds postings postings.
func buildJournal(ctx context.Context, pool *pgxpool.Pool, l *ledger.Ledger, postings int64, members, writers int, stderr io.Writer) error {
	var have int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM postings`).Scan(&have); err != nil {
		return err
	}
	if want := postings; have < want {
		entries := int((want - have + 3) / 4)
		fmt.Fprintf(stderr, "bench: writing %d entries (%d postings) through the batch path\n", entries, entries*4)
		start := time.Now()
		run := strconv.FormatInt(time.Now().UnixNano(), 36)
		var next, done int64
		var mu sync.Mutex
		var firstErr error
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
				for {
					mu.Lock()
					from := next
					next += 100
					mu.Unlock()
					if from >= int64(entries) || ctx.Err() != nil {
						return
					}
					n := min(100, int64(entries)-from)
					reqs := make([]ledger.EntryRequest, n)
					for i := range reqs {
						reqs[i] = benchEntry(r, fmt.Sprintf("bx-%s-%d", run, from+int64(i)), members)
					}
					err := l.Transact(ctx, func(tx pgx.Tx) error { _, err := l.PostMany(ctx, tx, reqs); return err })
					mu.Lock()
					if err != nil && firstErr == nil {
						firstErr = err
					}
					done += n
					if done%100_000 < n {
						fmt.Fprintf(stderr, "bench: %d of %d entries (%.0f/s)\n", done, entries, float64(done)/time.Since(start).Seconds())
					}
					mu.Unlock()
					if err != nil {
						return
					}
				}
			})
		}
		// The sealer follows the writers, as in the service.
		sealCtx, stopSeal := context.WithCancel(ctx)
		sealDone := make(chan struct{})
		go func() {
			defer close(sealDone)
			for sealCtx.Err() == nil {
				if n, err := l.Seal(sealCtx, ledger.SealBatch); err != nil || n == 0 {
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
		wg.Wait()
		stopSeal()
		<-sealDone
		if firstErr != nil {
			return firstErr
		}
	}
	return nil
}
