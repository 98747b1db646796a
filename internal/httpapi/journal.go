package httpapi

import (
	"bufio"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rebate-ledger/rebate/internal/audit"
)

var journalTypes = map[audit.Format]string{
	audit.JSONL:   "application/x-ndjson",
	audit.CSV:     "text/csv; charset=utf-8",
	audit.HLedger: "text/plain; charset=utf-8",
}

// getJournal streams the sealed journal (audit.Export) in constant memory: ?format=jsonl|csv|hledger,
// ?from_seq=&to_seq= or ?from=&to= (recorded_at). A client that goes away cancels the query. Once
// the first bytes are out an error cannot become a problem document: the stream just ends, and
// the missing trailer (JSONL) tells the client so.
func (s *server) getJournal(c echo.Context) error {
	f, err := audit.ParseFormat(c.QueryParam("format"))
	if err != nil {
		return err
	}
	var rng audit.Range
	for _, p := range []struct {
		name string
		into *int64
	}{{"from_seq", &rng.FromSeq}, {"to_seq", &rng.ToSeq}} {
		if raw := c.QueryParam(p.name); raw != "" {
			n, err := strconv.ParseInt(raw, 10, 64)
			if err != nil || n < 1 {
				return validation(p.name + " must be a positive whole number")
			}
			*p.into = n
		}
	}
	if err := queryTimes(c, map[string]*time.Time{"from": &rng.From, "to": &rng.To}); err != nil {
		return err
	}
	res := c.Response()
	// No write deadline for the stream (the server's WriteTimeout is for ordinary answers).
	_ = http.NewResponseController(res.Writer).SetWriteDeadline(time.Time{})
	res.Header().Set(echo.HeaderContentType, journalTypes[f])
	res.Header().Set("Content-Disposition", `attachment; filename="journal.`+string(f)+`"`)
	res.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(res, 64<<10)
	_, err = audit.Export(c.Request().Context(), s.cfg.Pool, bw, f, rng, func(done, total int64) {
		if done > 0 {
			_ = bw.Flush()
			res.Flush()
		}
	})
	if err != nil {
		s.cfg.Logger.Warn("journal export stopped", "err", err, "request_id", requestID(c))
		return nil
	}
	return bw.Flush()
}
