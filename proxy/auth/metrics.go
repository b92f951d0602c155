package auth

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	// loginsTotal counts client logins by configured method and result:
	// ok, failed (wrong password or unknown user, SQLSTATE 28P01), aborted
	// (client hung up mid-exchange, as psql does to prompt for a password)
	// and error (protocol violation or unsupported request).
	loginsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sluice",
		Subsystem: "auth",
		Name:      "logins_total",
		Help:      "Client authentication attempts by method and result (ok, failed, aborted, error).",
	}, []string{"method", "result"})

	// authQueryLookups counts auth_query lookups: hit and negative_hit are
	// answered from the cache, miss went to the server, error failed there.
	authQueryLookups = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sluice",
		Subsystem: "auth",
		Name:      "query_lookups_total",
		Help:      "auth_query secret lookups by result (hit, negative_hit, miss, error).",
	}, []string{"result"})
)

func observe(method Method, err error) {
	label := string(method)
	switch method {
	case MethodSCRAM, MethodMD5, MethodPassword, MethodTrust:
	default:
		label = "unknown" // keep label values bounded
	}
	loginsTotal.WithLabelValues(label, outcome(err)).Inc()
}
