package monitor

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (m *Monitor) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "uptime_s": time.Since(startTime).Seconds()})
}

// ReadyStatus is the /readyz body. Redis is reported but never makes
// Sluice unready: without it the cache falls back to L1 and PostgreSQL.
type ReadyStatus struct {
	Ready     bool                   `json:"ready"`
	Databases map[string]ProbeResult `json:"databases"`
	Redis     *ProbeResult           `json:"redis,omitempty"`
}

// ProbeResult is one dependency's state.
type ProbeResult struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

func (m *Monitor) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), m.settings().QueryTimeout)
	defer cancel()
	st := ReadyStatus{Ready: true, Databases: map[string]ProbeResult{}}
	if m.deps.Ready != nil {
		for db, err := range m.deps.Ready(ctx) {
			if err != nil {
				st.Ready = false
				st.Databases[db] = ProbeResult{Error: err.Error()}
			} else {
				st.Databases[db] = ProbeResult{OK: true}
			}
		}
	}
	if m.deps.RedisStats != nil {
		rs, err := m.deps.RedisStats(ctx)
		p := ProbeResult{OK: err == nil && rs.Connected && rs.Subscribed}
		switch {
		case err != nil:
			p.Error = err.Error()
		case !rs.Connected:
			p.Error = "not connected"
		case !rs.Subscribed:
			p.Error = "not subscribed to invalidations yet: the cache answers from PostgreSQL until it is"
		}
		st.Redis = &p
	}
	code := http.StatusOK
	if !st.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, st)
}

var metricsHandler = promhttp.Handler()

func (m *Monitor) handleMetrics(w http.ResponseWriter, r *http.Request) {
	metricsHandler.ServeHTTP(w, r)
}
