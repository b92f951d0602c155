package monitor

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
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
		p := ProbeResult{OK: err == nil && rs.Connected}
		if err != nil {
			p.Error = err.Error()
		} else if !rs.Connected {
			p.Error = "not connected"
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

// StatsResponse is /api/v1/stats: the proxy snapshot plus monitor's own
// bookkeeping and the cache counters.
type StatsResponse struct {
	Snapshot
	Cache                *CacheStats `json:"cache,omitempty"`
	Fingerprints         int64       `json:"fingerprints"`
	FingerprintEvictions int64       `json:"fingerprint_evictions"`
	MonitorEnabled       bool        `json:"monitor_enabled"`
}

func (m *Monitor) handleStats(w http.ResponseWriter, r *http.Request) {
	if m.deps.Source == nil {
		jsonError(w, http.StatusServiceUnavailable, "no proxy statistics source")
		return
	}
	resp := StatsResponse{Snapshot: m.deps.Source.Snapshot(), MonitorEnabled: m.col != nil}
	if resp.Pools == nil {
		resp.Pools = []PoolStats{}
	}
	if resp.Clients == nil {
		resp.Clients = []ClientStats{}
	}
	if resp.Servers == nil {
		resp.Servers = []ServerStats{}
	}
	if m.deps.CacheStats != nil {
		cs := m.deps.CacheStats()
		resp.Cache = &cs
	}
	if m.col != nil {
		resp.Fingerprints = m.col.table.entries.Load()
		resp.FingerprintEvictions = m.col.table.evictions.Load()
	}
	writeJSON(w, http.StatusOK, resp)
}

// QueriesResponse is /api/v1/queries.
type QueriesResponse struct {
	Sort      string       `json:"sort"`
	Limit     int          `json:"limit"`
	Total     int          `json:"total"`
	Evictions int64        `json:"evictions"`
	Queries   []QueryStats `json:"queries"`
}

var querySorts = map[string]func(a, b QueryStats) int{
	"total_time": func(a, b QueryStats) int { return cmp.Compare(b.TotalTimeMs, a.TotalTimeMs) },
	"calls":      func(a, b QueryStats) int { return cmp.Compare(b.Calls, a.Calls) },
	"mean_time":  func(a, b QueryStats) int { return cmp.Compare(b.MeanTimeMs, a.MeanTimeMs) },
	"p99":        func(a, b QueryStats) int { return cmp.Compare(b.P99Ms, a.P99Ms) },
	"rows":       func(a, b QueryStats) int { return cmp.Compare(b.Rows, a.Rows) },
	"errors":     func(a, b QueryStats) int { return cmp.Compare(b.Errors, a.Errors) },
}

func (m *Monitor) handleQueries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sortBy := cmp.Or(q.Get("sort"), "total_time")
	less, ok := querySorts[sortBy]
	if !ok {
		jsonError(w, http.StatusBadRequest, "sort must be one of total_time, calls, mean_time, p99, rows, errors")
		return
	}
	limit := 50
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			jsonError(w, http.StatusBadRequest, "limit must be an integer in 1..10000")
			return
		}
		limit = n
	}
	resp := QueriesResponse{Sort: sortBy, Limit: limit, Queries: []QueryStats{}}
	if m.col != nil {
		all := m.col.table.all()
		if db := q.Get("database"); db != "" {
			all = slices.DeleteFunc(all, func(s QueryStats) bool { return s.Database != db })
		}
		slices.SortStableFunc(all, func(a, b QueryStats) int {
			return cmp.Or(less(a, b), cmp.Compare(a.Fingerprint, b.Fingerprint))
		})
		resp.Total = len(all)
		resp.Queries = all[:min(limit, len(all))]
		resp.Evictions = m.col.table.evictions.Load()
	}
	writeJSON(w, http.StatusOK, resp)
}

func (m *Monitor) handleSystem(w http.ResponseWriter, r *http.Request) {
	s, ok := m.sys.last()
	if !ok {
		jsonError(w, http.StatusServiceUnavailable, "no system sample yet (monitor disabled or first sample pending)")
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (m *Monitor) handleSystemHistory(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"interval_s": m.settings().SampleInterval.Seconds(), "samples": m.sys.list()})
}

func (m *Monitor) handleTimeline(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"interval_s": m.settings().SampleInterval.Seconds(), "samples": m.traffic.list()})
}

// BottlenecksResponse is /api/v1/bottlenecks.
type BottlenecksResponse struct {
	GeneratedAt time.Time `json:"generated_at"`
	Enabled     bool      `json:"enabled"`
	Findings    []Finding `json:"findings"`
}

func (m *Monitor) handleBottlenecks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, BottlenecksResponse{GeneratedAt: time.Now(), Enabled: m.col != nil, Findings: m.store.list()})
}

// RecommendationsResponse is /api/v1/recommendations.
type RecommendationsResponse struct {
	GeneratedAt     time.Time        `json:"generated_at"`
	Recommendations []Recommendation `json:"recommendations"`
}

func (m *Monitor) handleRecommendations(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, RecommendationsResponse{GeneratedAt: time.Now(), Recommendations: recommendations(m.store.list())})
}

// PurgeRequest is the POST /api/v1/cache/purge body: exactly one of the
// three selectors.
type PurgeRequest struct {
	Relation    string `json:"relation,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	All         bool   `json:"all,omitempty"`
}

func (m *Monitor) handlePurge(w http.ResponseWriter, r *http.Request) {
	var req PurgeRequest
	if !decodeBody(w, r, &req) {
		return
	}
	n := 0
	for _, set := range []bool{req.Relation != "", req.Fingerprint != "", req.All} {
		if set {
			n++
		}
	}
	if n != 1 {
		jsonError(w, http.StatusBadRequest, `give exactly one of "relation", "fingerprint" or "all": true`)
		return
	}
	if m.deps.Purge == nil {
		jsonError(w, http.StatusNotImplemented, "no result cache configured")
		return
	}
	purged, err := m.deps.Purge(r.Context(), req.Relation, req.Fingerprint, req.All)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "purge failed: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"purged": purged})
}

func (m *Monitor) handleReload(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			jsonError(w, http.StatusRequestEntityTooLarge, "request body exceeds admin.max_body_bytes")
			return
		}
	}
	if m.deps.Reload == nil {
		jsonError(w, http.StatusNotImplemented, "reload is not wired")
		return
	}
	if err := m.deps.Reload(); err != nil {
		jsonError(w, http.StatusInternalServerError, "reload failed: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "reloaded"})
}
