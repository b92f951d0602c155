package monitor

import (
	"context"
	"time"
)

// TrafficSample is one point of the dashboard's traffic history.
type TrafficSample struct {
	Time          time.Time `json:"time"`
	QPS           float64   `json:"qps"`             // statements/s recorded
	TPS           float64   `json:"tps"`             // transactions/s from the proxy totals
	ErrorsPerSec  float64   `json:"errors_per_s"`    // statements ending in an error
	P50Ms         float64   `json:"p50_ms"`          // over the sample interval
	P95Ms         float64   `json:"p95_ms"`          //
	P99Ms         float64   `json:"p99_ms"`          //
	CacheLookups  uint64    `json:"cache_lookups"`   // cacheable statements in the interval
	CacheHitRatio float64   `json:"cache_hit_ratio"` // hits/lookups; 0 without lookups
	PoolSize      int       `json:"pool_size"`       // sum over pools
	ServersActive int       `json:"servers_active"`
	ServersIdle   int       `json:"servers_idle"`
	ServersIdleTx int       `json:"servers_idle_in_tx"`
	ClientsActive int       `json:"clients_active"`
	ClientsWait   int       `json:"clients_waiting"`
	Clients       int       `json:"clients"`
}

// sampleNow takes one system and one traffic sample. The first call only
// sets the baselines of the traffic rates and pushes no traffic point.
func (m *Monitor) sampleNow(ctx context.Context) {
	now := time.Now()
	m.sys.push(m.sampler.sample(ctx, now))
	ts := TrafficSample{Time: now}
	primed := !m.prevTime.IsZero()
	dt := 0.0
	if primed {
		dt = now.Sub(m.prevTime).Seconds()
	}
	if m.col != nil {
		m.col.table.takeTraffic(&m.tick)
		if dt > 0 {
			ts.QPS = float64(m.tick.calls) / dt
			ts.ErrorsPerSec = float64(m.tick.errors) / dt
		}
		ts.P50Ms = m.tick.sk.Quantile(0.5) * 1e3
		ts.P95Ms = m.tick.sk.Quantile(0.95) * 1e3
		ts.P99Ms = m.tick.sk.Quantile(0.99) * 1e3
		ts.CacheLookups = m.tick.lookups
		if m.tick.lookups > 0 {
			ts.CacheHitRatio = float64(m.tick.hits) / float64(m.tick.lookups)
		}
	}
	if m.deps.Source != nil {
		snap := m.deps.Source.Snapshot()
		for _, p := range snap.Pools {
			ts.PoolSize += p.Size
			ts.ServersActive += p.ServersActive
			ts.ServersIdle += p.ServersIdle
			ts.ServersIdleTx += p.ServersIdleInTx
			ts.ClientsActive += p.ClientsActive
			ts.ClientsWait += p.ClientsWaiting
		}
		ts.Clients = len(snap.Clients)
		if m.prevTotals != nil && dt > 0 && snap.Totals.Xacts >= m.prevTotals.Xacts {
			ts.TPS = float64(snap.Totals.Xacts-m.prevTotals.Xacts) / dt
		}
		t := snap.Totals
		m.prevTotals = &t
	}
	m.prevTime = now
	if primed {
		m.traffic.push(ts)
	}
}
