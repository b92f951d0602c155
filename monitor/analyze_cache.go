package monitor

import (
	"fmt"
	"time"
)

// cacheFindings compares the oldest and newest cache counters in the window.
func cacheFindings(s Settings, hist []cacheSnap) []Finding {
	if len(hist) < 2 {
		return nil
	}
	t := s.Thresholds
	a, b := hist[0], hist[len(hist)-1]
	hits, misses := b.s.Hits-a.s.Hits, b.s.Misses-a.s.Misses
	fills, inval := b.s.Fills-a.s.Fills, b.s.Invalidations-a.s.Invalidations
	win := Evidence{Window: "last " + b.t.Sub(a.t).Round(time.Second).String(), From: a.t, To: b.t}
	skips := map[string]int64{}
	for k, v := range b.s.Skips {
		if d := v - a.s.Skips[k]; d > 0 {
			skips[k] = d
		}
	}
	var out []Finding
	lookups := hits + misses
	if lookups >= int64(t.CacheMinLookups) {
		ratio := float64(hits) / float64(lookups)
		if ratio < t.CacheHitRatioMin {
			f := newFinding(KindCacheHitRatio, "", SeverityWarning, "Result cache hit ratio is low")
			f.Evidence = win
			f.Evidence.Summary = fmt.Sprintf("hit ratio %.0f%% (%d hits, %d misses, %d invalidations)", ratio*100, hits, misses, inval)
			f.Evidence.Values = map[string]any{"hit_ratio": ratio, "hits": hits, "misses": misses, "fills": fills,
				"invalidations": inval, "skips": skips, "threshold": t.CacheHitRatioMin}
			f.Recommendation = "Cached statements are mostly missed: TTLs may be shorter than the interval between repeats, keys may include volatile parameters, or writes invalidate the tables constantly. Keep rules only for reads that repeat within their TTL (see /api/v1/queries cache_hit_ratio per fingerprint)."
			f.Score = (1 - ratio) * 50
			out = append(out, f)
		}
	}
	if fills >= int64(t.CacheMinLookups)/10+1 && float64(inval)/float64(fills) > t.CacheChurnMax {
		churn := float64(inval) / float64(fills)
		f := newFinding(KindCacheChurn, "", SeverityWarning, "Result cache invalidation churn")
		f.Evidence = win
		f.Evidence.Summary = fmt.Sprintf("%d invalidations per %d fills (%.2f per fill)", inval, fills, churn)
		f.Evidence.Values = map[string]any{"invalidations": inval, "fills": fills, "churn": churn, "threshold": t.CacheChurnMax}
		f.Recommendation = "Cached results are thrown away nearly as fast as they are filled: the cached tables are written too often. Remove cache rules on frequently written tables, or cache only statements on tables that change rarely."
		f.Score = churn * 20
		out = append(out, f)
	}
	return out
}

// redisFindings judges the L2 cache's Redis.
func redisFindings(s Settings, prev *RedisStats, cur RedisStats, err error, now time.Time) []Finding {
	t := s.Thresholds
	at := Evidence{Window: "now", From: now, To: now}
	if err != nil || !cur.Connected {
		f := newFinding(KindRedisDown, "", SeverityWarning, "Redis (L2 cache) is unreachable")
		msg := "not connected"
		if err != nil {
			msg = err.Error()
		}
		f.Evidence = at
		f.Evidence.Summary = msg
		f.Evidence.Values = map[string]any{"error": msg}
		f.Recommendation = "Sluice keeps serving from PostgreSQL and the L1 cache, but shared caching across instances is off: check Redis is running and reachable from Sluice."
		f.Score = 50
		return []Finding{f}
	}
	var out []Finding
	if cur.Latency >= t.RedisLatency {
		f := newFinding(KindRedisLatency, "", SeverityWarning, "Redis latency is high")
		f.Evidence = at
		f.Evidence.Summary = fmt.Sprintf("Redis latency %s (threshold %s)", cur.Latency, t.RedisLatency)
		f.Evidence.Values = map[string]any{"latency_ms": float64(cur.Latency) / 1e6, "threshold_ms": float64(t.RedisLatency) / 1e6}
		f.Recommendation = "A cache hit that is slower than the query defeats the cache: put Redis next to Sluice, check its CPU and persistence (fork for RDB/AOF rewrite), or rely on the L1 cache for small hot results."
		f.Score = float64(cur.Latency) / float64(t.RedisLatency) * 10
		out = append(out, f)
	}
	if prev != nil {
		if d := cur.Errors - prev.Errors; d > 0 {
			f := newFinding(KindRedisErrors, "", SeverityWarning, "Redis errors")
			f.Evidence = Evidence{Window: "since previous check", To: now, Summary: fmt.Sprintf("%d Redis errors since the previous check", d),
				Values: map[string]any{"errors": d}}
			f.Recommendation = "Errors make cache lookups fall through to PostgreSQL: check the Sluice log for the Redis error and Redis's own log."
			f.Score = float64(d)
			out = append(out, f)
		}
		if d := cur.Evictions - prev.Evictions; d > 0 {
			f := newFinding(KindRedisEvictions, "", SeverityWarning, "Redis is evicting keys")
			f.Evidence = Evidence{Window: "since previous check", To: now, Summary: fmt.Sprintf("%d keys evicted since the previous check", d),
				Values: map[string]any{"evictions": d, "used_memory": cur.UsedMemory, "maxmemory": cur.MaxMemory}}
			f.Recommendation = "Redis reached maxmemory and drops cached results: raise maxmemory, shorten TTLs, or cache fewer/smaller results."
			f.Score = 20
			out = append(out, f)
		}
	}
	if cur.MaxMemory > 0 {
		ratio := float64(cur.UsedMemory) / float64(cur.MaxMemory)
		if ratio >= t.RedisMemoryRatio {
			f := newFinding(KindRedisMemory, "", SeverityWarning, "Redis memory near maxmemory")
			f.Evidence = at
			f.Evidence.Summary = fmt.Sprintf("used_memory %d MiB of maxmemory %d MiB (%.0f%%)", cur.UsedMemory>>20, cur.MaxMemory>>20, ratio*100)
			f.Evidence.Values = map[string]any{"used_memory": cur.UsedMemory, "maxmemory": cur.MaxMemory, "ratio": ratio, "threshold": t.RedisMemoryRatio}
			f.Recommendation = "Evictions will start soon: raise maxmemory or shorten TTLs."
			f.Score = ratio * 20
			out = append(out, f)
		}
	}
	return out
}
