package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	dto "github.com/prometheus/client_model/go"
)

// Metrics of the proxy, documented in README.md under "Metrics".
var (
	clientsGauge = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "sluice", Subsystem: "proxy", Name: "client_connections",
		Help: "Client connections currently open.",
	})
	serversOpened = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "proxy", Name: "server_connections_opened_total",
		Help: "Server connections opened.",
	})
	serversClosed = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "proxy", Name: "server_connections_closed_total",
		Help: "Server connections closed.",
	})
	serverConnectErrors = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "proxy", Name: "server_connect_errors_total",
		Help: "Failed attempts to open a server connection.",
	})
	poolWaitSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: "sluice", Subsystem: "proxy", Name: "pool_wait_seconds",
		Help:    "Time clients waited for a server connection.",
		Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5, 30},
	})
	queryDuration = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: "sluice", Subsystem: "proxy", Name: "request_duration_seconds",
		Help:    "Time from a request's first message to its ReadyForQuery, as the client sees it.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	})
	errorsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "proxy", Name: "errors_total",
		Help: "ErrorResponses sent to clients, by SQLSTATE class.",
	}, []string{"class"})
	bytesIn = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "proxy", Name: "client_bytes_received_total",
		Help: "Bytes received from clients.",
	})
	bytesOut = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "proxy", Name: "client_bytes_sent_total",
		Help: "Bytes sent to clients.",
	})
	cancelsTotal = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "proxy", Name: "cancel_requests_forwarded_total",
		Help: "Cancel requests forwarded to a server.",
	})
	panicsTotal = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "proxy", Name: "panics_total",
		Help: "Connection goroutines that panicked and were recovered (each is a bug).",
	})
)

var blockedTotal = promauto.NewCounter(prometheus.CounterOpts{
	Namespace: "sluice", Subsystem: "proxy", Name: "statements_blocked_total",
	Help: "Statements answered with a rule's error instead of reaching PostgreSQL.",
})

var truncatedTotal = promauto.NewCounter(prometheus.CounterOpts{
	Namespace: "sluice", Subsystem: "proxy", Name: "results_truncated_total",
	Help: "Result sets cut by an injected row limit (the client got a notice).",
})

// counterValue reads a counter's current value (for stats snapshots).
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil || m.Counter == nil {
		return 0
	}
	return m.Counter.GetValue()
}

var stalePlanRetries = promauto.NewCounter(prometheus.CounterOpts{
	Namespace: "sluice", Subsystem: "proxy", Name: "stale_plan_retries_total",
	Help: "Batches sent again after 'cached plan must not change result type' (retry.go).",
})

var pinnedTotal = promauto.NewCounter(prometheus.CounterOpts{
	Namespace: "sluice", Subsystem: "proxy", Name: "clients_pinned_total",
	Help: "Transaction-mode clients pinned to their server by session state Sluice can't carry.",
})

var (
	inlineRequests = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "proxy", Name: "inline_requests_total",
		Help: "Requests relayed by the client's goroutine (inline.go).",
	})
	inlineHandovers = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sluice", Subsystem: "proxy", Name: "inline_handovers_total",
		Help: "Inline relays that handed the server to its relay goroutine: held (the client keeps the server: transaction block, pinned, session mode) or wait (a reply slower than the inline wait, or COPY FROM STDIN).",
	}, []string{"reason"})
	inlineHandoverHeld = inlineHandovers.WithLabelValues("held")
	inlineHandoverWait = inlineHandovers.WithLabelValues("wait")
)
