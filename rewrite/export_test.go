package rewrite

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Hooks for the external tests in package rewrite_test.

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// MetricMisses and friends read the package's counters.
func MetricMisses() float64              { return counterValue(metricCacheMisses) }
func RewriteCounter(rule string) float64 { return counterValue(metricRewrites.WithLabelValues(rule)) }
func BlockCounter(rule string) float64   { return counterValue(metricBlocks.WithLabelValues(rule)) }
func ParseErrorCounter() float64         { return counterValue(metricParseErrors) }
