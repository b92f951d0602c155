package monitor

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"time"
)

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

// HistoryResponse is /api/v1/system/history and /api/v1/timeline. With
// ?since=<RFC 3339 time> only newer samples are returned, so a dashboard
// left open fetches each point once; Capacity is how many are kept.
type HistoryResponse[T any] struct {
	IntervalS float64 `json:"interval_s"`
	Capacity  int     `json:"capacity"`
	Samples   []T     `json:"samples"`
}

func (m *Monitor) handleSystemHistory(w http.ResponseWriter, r *http.Request) {
	serveHistory(w, r, m, m.sys, func(s SystemSample) time.Time { return s.Time })
}

func (m *Monitor) handleTimeline(w http.ResponseWriter, r *http.Request) {
	serveHistory(w, r, m, m.traffic, func(s TrafficSample) time.Time { return s.Time })
}

func serveHistory[T any](w http.ResponseWriter, r *http.Request, m *Monitor, rg *ring[T], at func(T) time.Time) {
	samples := rg.list()
	if s := r.URL.Query().Get("since"); s != "" {
		since, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			jsonError(w, http.StatusBadRequest, "since must be an RFC 3339 time")
			return
		}
		i := 0
		for i < len(samples) && !at(samples[i]).After(since) {
			i++
		}
		samples = samples[i:]
	}
	writeJSON(w, http.StatusOK, HistoryResponse[T]{IntervalS: m.settings().SampleInterval.Seconds(), Capacity: len(rg.buf), Samples: samples})
}
