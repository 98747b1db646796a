package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"

	"github.com/rebate-ledger/rebate/internal/audit"
)

// export writes the sealed chain (or a stretch of it) to --out or stdout, with a progress bar on a
// terminal (periodic lines otherwise), and FILE.manifest.json beside an --out file. It only reads,
// so --database-url may name a read replica.
func export(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// A stream holds little at a time; the service's GOGC of 400 (main) would let garbage grow to
	// five times that before collecting, which is memory an export on a small machine does not have.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(100)
	}
	fs := newFlags("export", stderr)
	dbURL := databaseFlag(fs)
	format := fs.String("format", "jsonl", "jsonl, csv or hledger")
	fromSeq := fs.Int64("from-seq", 0, "first chain seq (default: the first)")
	toSeq := fs.Int64("to-seq", 0, "last chain seq (default: the chain's head)")
	from := fs.String("from", "", "RFC 3339: entries recorded at or after this instant (with --to, a contiguous stretch of the chain)")
	to := fs.String("to", "", "RFC 3339: entries recorded before this instant")
	out := fs.String("out", "", "write here (and FILE.manifest.json beside it) instead of stdout")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of the export to this file")
	pool, err := parseAndOpen(ctx, fs, dbURL, args, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	f, err := audit.ParseFormat(*format)
	if err != nil {
		return err
	}
	rng := audit.Range{FromSeq: *fromSeq, ToSeq: *toSeq}
	for _, p := range []struct {
		flag, raw string
		into      *time.Time
	}{{"--from", *from, &rng.From}, {"--to", *to, &rng.To}} {
		if p.raw == "" {
			continue
		}
		if *p.into, err = time.Parse(time.RFC3339Nano, p.raw); err != nil {
			return fmt.Errorf("%s must be an RFC 3339 time", p.flag)
		}
	}
	w, h := stdout, sha256.New()
	var file *os.File
	if *out != "" {
		if file, err = os.Create(*out); err != nil {
			return err
		}
		defer file.Close()
		bw := bufio.NewWriterSize(io.MultiWriter(file, h), 1<<20)
		defer bw.Flush() //nolint:errcheck
		w = bw
	}
	stop, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	sum, err := audit.Export(ctx, pool, w, f, rng, exportProgress(stderr))
	stop()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "export: %d entries, %d postings, seq %d to %d (chain head %d, %d entries not sealed yet), peak_rss_mb=%d\n",
		sum.Entries, sum.Postings, sum.FromSeq, sum.ToSeq, sum.ChainHeadSeq, sum.Unsealed, peakRSSMB())
	if file == nil {
		return nil
	}
	if err := w.(*bufio.Writer).Flush(); err != nil {
		return err
	}
	if err := file.Close(); err != nil {
		return err
	}
	m := audit.Manifest{Summary: sum, File: *out, SHA256: hex.EncodeToString(h.Sum(nil)), Range: rng}
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(*out+".manifest.json", append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "export: wrote %s and %s.manifest.json (sha256 %s)\n", *out, *out, m.SHA256)
	return nil
}

// exportProgress is a progress bar on a terminal, and a line every 10 seconds elsewhere.
func exportProgress(stderr io.Writer) func(done, total int64) {
	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = isatty.IsTerminal(f.Fd())
	}
	var bar *progressbar.ProgressBar
	last := time.Now()
	return func(done, total int64) {
		switch {
		case total > 0 && tty:
			bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription("export"),
				progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("entries"),
				progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
		case total > 0:
			fmt.Fprintf(stderr, "export: %d entries to write\n", total)
		case bar != nil:
			_ = bar.Set64(done)
		case time.Since(last) >= 10*time.Second:
			last = time.Now()
			fmt.Fprintf(stderr, "export: %d entries written\n", done)
		}
	}
}

// verifyFile checks a JSONL export with no database; a manifest beside it is used when present.
func verifyFile(path, manifest string, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var m *audit.Manifest
	if manifest == "" {
		if _, err := os.Stat(path + ".manifest.json"); err == nil {
			manifest = path + ".manifest.json"
		}
	}
	if manifest != "" {
		b, err := os.ReadFile(manifest)
		if err != nil {
			return err
		}
		m = &audit.Manifest{}
		if err := json.Unmarshal(b, m); err != nil {
			return fmt.Errorf("manifest %s: %w", manifest, err)
		}
	}
	rep, err := audit.VerifyFile(f, m)
	out := struct {
		File     string       `json:"file"`
		Manifest string       `json:"manifest,omitempty"`
		OK       bool         `json:"ok"`
		Problem  string       `json:"problem,omitempty"`
		Checked  audit.Report `json:"checked"`
	}{File: path, Manifest: manifest, OK: err == nil, Checked: rep}
	if err != nil {
		if !errors.Is(err, audit.ErrTampered) {
			return err
		}
		out.Problem = err.Error()
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if e := enc.Encode(out); e != nil {
		return e
	}
	return err
}

// peakRSSMB is this process's peak resident memory (VmHWM), in MiB; 0 where /proc cannot be read.
func peakRSSMB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb / 1024
		}
	}
	return 0
}
