package ledger

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the journal, registered with the default Prometheus registry.
var (
	metricEntriesPosted = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "rebate_ledger_entries_posted_total",
		Help: "Journal entries written (replayed=true for idempotent replays that wrote nothing).",
	}, []string{"replayed"})
	metricTxRetries = promauto.NewCounter(prometheus.CounterOpts{
		Name: "rebate_ledger_tx_retries_total",
		Help: "Transactions retried after a deadlock or serialization failure.",
	})
	metricSealLagEntries = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "rebate_ledger_seal_lag_entries",
		Help: "Entries written but not yet sealed into the hash chain, as of the last sealing run.",
	})
	metricSealLagSeconds = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "rebate_ledger_seal_lag_seconds",
		Help: "Age of the oldest entry not yet sealed, as of the last sealing run.",
	})
	metricSealed = promauto.NewCounter(prometheus.CounterOpts{
		Name: "rebate_ledger_entries_sealed_total",
		Help: "Entries sealed into the hash chain.",
	})
)
