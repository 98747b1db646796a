// Package metrics holds the service's Prometheus metrics behind small functions, so the domain
// packages record events in their own terms (counts, durations) and never handle float values.
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	entriesPosted = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "rebate_ledger_entries_posted_total",
		Help: "Journal entries written (replayed=true for idempotent replays that wrote nothing).",
	}, []string{"replayed"})
	txRetries = promauto.NewCounter(prometheus.CounterOpts{
		Name: "rebate_ledger_tx_retries_total",
		Help: "Transactions retried after a deadlock or serialization failure.",
	})
	sealLagEntries = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "rebate_ledger_seal_lag_entries",
		Help: "Entries written but not yet sealed into the hash chain, as of the last sealing run.",
	})
	sealLagSeconds = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "rebate_ledger_seal_lag_seconds",
		Help: "Age of the oldest entry not yet sealed, as of the last sealing run.",
	})
	sealed = promauto.NewCounter(prometheus.CounterOpts{
		Name: "rebate_ledger_entries_sealed_total",
		Help: "Entries sealed into the hash chain.",
	})
	auditCheckedSeq = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "rebate_audit_checked_seq", Help: "The last chain seq the continuous checker has checked.",
	})
	auditViolations = promauto.NewCounter(prometheus.CounterOpts{
		Name: "rebate_audit_violations_total", Help: "Violations of the journal's invariants the continuous checker found.",
	})
	webhookAttempts = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "rebate_webhook_attempts_total",
		Help: "Webhook delivery attempts by result: delivered, retry (failed, to be tried again), dead (given up).",
	}, []string{"result"})
	auditLastSuccess = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "rebate_audit_last_success_timestamp_seconds", Help: "When the continuous checker last finished a run with no violation.",
	})
	httpRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "rebate_http_requests_total", Help: "HTTP requests by route, method and status.",
	}, []string{"route", "method", "status"})
	coalescedGroups = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "rebate_coalesced_group_size",
		Help:    "Requests applied together in one transaction by the coalescer, by what they are (events, withdrawals).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
	}, []string{"what"})
	httpLatency = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rebate_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	}, []string{"route", "method"})
)

// Coalesced observes the size of one group the coalescer applied together.
func Coalesced(what string, n int) { coalescedGroups.WithLabelValues(what).Observe(float64(n)) }

// EntriesPosted counts written (replayed false) or replayed entries.
func EntriesPosted(replayed bool, n int) {
	if n > 0 {
		entriesPosted.WithLabelValues(strconv.FormatBool(replayed)).Add(float64(n))
	}
}

// TxRetried counts one retried transaction.
func TxRetried() { txRetries.Inc() }

// Sealed records a sealing run: entries sealed, entries still waiting, and the oldest one's age.
func Sealed(n int, waiting int64, oldest time.Duration) {
	sealed.Add(float64(n))
	sealLagEntries.Set(float64(waiting))
	sealLagSeconds.Set(oldest.Seconds())
}

// HTTPRequest records one request under its route pattern.
func HTTPRequest(route, method string, status int, d time.Duration) {
	httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	httpLatency.WithLabelValues(route, method).Observe(d.Seconds())
}

// AuditChecked records a run of the continuous checker: how far it checked, what it found, when.
func AuditChecked(seq int64, violations int, at time.Time) {
	auditCheckedSeq.Set(float64(seq))
	auditViolations.Add(float64(violations))
	if violations == 0 {
		auditLastSuccess.Set(float64(at.Unix()))
	}
}

// WebhookAttempt counts one delivery attempt by its result (delivered, retry, dead).
func WebhookAttempt(result string) { webhookAttempts.WithLabelValues(result).Inc() }
