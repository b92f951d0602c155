package app

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-proxy/sluice/monitor"
	"github.com/sluice-proxy/sluice/resultcache"
)

// purge serves POST /api/v1/cache/purge across every database Sluice
// serves.
func (a *App) purge(ctx context.Context, relation, fingerprint string, all bool) (int, error) {
	var req resultcache.PurgeRequest
	switch {
	case all:
		req.All = true
	case relation != "":
		schema, name, ok := strings.Cut(relation, ".")
		if !ok {
			schema, name = "", relation
		}
		req.Relation = resultcache.Relation{Schema: schema, Name: name}
	case fingerprint != "":
		fp, err := strconv.ParseUint(strings.TrimPrefix(fingerprint, "0x"), 16, 64)
		if err != nil {
			return 0, fmt.Errorf("fingerprint: %w", err)
		}
		req.Fingerprint = fp
	default:
		return 0, errors.New("give relation, fingerprint or all")
	}
	total := 0
	for _, db := range a.databases() {
		r := req
		r.Database = db
		n, err := a.Cache.Purge(ctx, r)
		if err != nil {
			return total, err
		}
		total += n
		if req.All {
			break // one purge of everything covers every database
		}
	}
	return total, nil
}

// databases are the names clients use: configured ones and those with pools.
func (a *App) databases() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range a.Proxy.Snapshot().Pools {
		if !seen[p.Database] {
			seen[p.Database] = true
			out = append(out, p.Database)
		}
	}
	for _, d := range a.Proxy.Databases() {
		if d != "*" && !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// cacheStats reads the result cache's counters from the registry it
// reports to.
func cacheStats() monitor.CacheStats {
	st := monitor.CacheStats{Skips: map[string]int64{}}
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		return st
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := int64(m.GetCounter().GetValue() + m.GetGauge().GetValue())
			switch mf.GetName() {
			case "sluice_resultcache_hits_total":
				st.Hits += v
			case "sluice_resultcache_misses_total":
				st.Misses += v
			case "sluice_resultcache_fills_total":
				st.Fills += v
			case "sluice_resultcache_invalidations_total":
				st.Invalidations += v
			case "sluice_resultcache_l1_bytes":
				st.Bytes += v
			case "sluice_resultcache_skips_total":
				for _, l := range m.GetLabel() {
					if l.GetName() == "reason" {
						st.Skips[l.GetValue()] += v
					}
				}
			}
		}
	}
	return st
}

// redisErrors is the cache's Redis error count, for the monitor's probe.
func redisErrors() int64 {
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		return 0
	}
	var n int64
	for _, mf := range mfs {
		if mf.GetName() == "sluice_resultcache_redis_errors_total" {
			for _, m := range mf.GetMetric() {
				n += int64(m.GetCounter().GetValue())
			}
		}
	}
	return n
}
