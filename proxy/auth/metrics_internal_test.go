package auth

import (
	"errors"
	"io"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestLoginMetrics(t *testing.T) {
	tests := []struct {
		method Method
		err    error
		label  string
		result string
	}{
		{MethodSCRAM, nil, "scram-sha-256", "ok"},
		{MethodMD5, authFailed("u", ""), "md5", "failed"},
		{MethodPassword, &Error{Severity: "FATAL", Code: CodeInvalidPassword, Message: "empty password returned by client"}, "password", "failed"},
		{MethodSCRAM, disconnected(io.ErrUnexpectedEOF), "scram-sha-256", "aborted"},
		{MethodSCRAM, malformedSCRAM("x"), "scram-sha-256", "error"},
		{Method("bogus"), errors.New("x"), "unknown", "error"},
	}
	for _, tt := range tests {
		c := loginsTotal.WithLabelValues(tt.label, tt.result)
		before := counterValue(t, c)
		observe(tt.method, tt.err)
		if got := counterValue(t, c); got != before+1 {
			t.Errorf("observe(%s, %v): %s/%s went %v -> %v", tt.method, tt.err, tt.label, tt.result, before, got)
		}
	}
}
