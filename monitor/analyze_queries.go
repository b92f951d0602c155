package monitor

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// queryFindings: top statements by time, latency regressions against each
// fingerprint's own EWMA baseline, cacheable reads the cache never serves,
// and huge result sets.
func queryFindings(s Settings, rows []fpWindow, now time.Time) []Finding {
	t := s.Thresholds
	var out []Finding
	var totalNs int64
	for i := range rows {
		totalNs += rows[i].window.ns
	}
	win := Evidence{Window: windowText(s.Window), From: now.Add(-s.Window), To: now}
	tick := Evidence{Window: windowText(s.AnalysisInterval), From: now.Add(-s.AnalysisInterval), To: now}
	ms := func(sec float64) float64 { return sec * 1e3 }

	if totalNs > 0 {
		byTime := slices.Clone(rows)
		slices.SortFunc(byTime, func(a, b fpWindow) int { return cmp.Compare(b.window.ns, a.window.ns) })
		for i := 0; i < len(byTime) && i < 3; i++ {
			r := byTime[i]
			share := float64(r.window.ns) / float64(totalNs)
			if share < t.TopTimeShare || r.window.calls == 0 {
				break
			}
			f := newFinding(KindQueryTopTime, fpHex(r.fp), SeverityInfo, fmt.Sprintf("Statement takes %.0f%% of query time", share*100))
			f.Evidence = win
			f.Evidence.Summary = fmt.Sprintf("%d calls, %.1f ms total (%.0f%% of all), mean %.2f ms: %s",
				r.window.calls, float64(r.window.ns)/1e6, share*100, ms(r.windowMean()), shorten(r.normalized, 120))
			f.Evidence.Values = map[string]any{"fingerprint": fpHex(r.fp), "database": r.database, "calls": r.window.calls,
				"total_ms": float64(r.window.ns) / 1e6, "share": share, "mean_ms": ms(r.windowMean()), "query": r.normalized}
			f.Recommendation = "This is where the time goes: check its plan (see index advice), serve it from the result cache if it is a read that tolerates a TTL, or call it less often (batching, N+1 patterns)."
			f.Score = share * 100
			out = append(out, f)
		}
	}
	for i := range rows {
		r := &rows[i]
		cur := r.tickMean()
		if r.tick.calls >= uint64(t.RegressionMinCalls) && r.baselineTicks >= 3 && r.baseline > 0 &&
			cur >= t.RegressionFactor*r.baseline && time.Duration((cur-r.baseline)*1e9) >= t.RegressionMinDelta {
			f := newFinding(KindQueryRegression, fpHex(r.fp), SeverityWarning, "Statement latency rose sharply")
			f.Evidence = tick
			f.Evidence.Summary = fmt.Sprintf("mean %.2f ms over %d calls vs baseline %.2f ms (×%.1f): %s",
				ms(cur), r.tick.calls, ms(r.baseline), cur/r.baseline, shorten(r.normalized, 120))
			f.Evidence.Values = map[string]any{"fingerprint": fpHex(r.fp), "database": r.database, "mean_ms": ms(cur),
				"baseline_ms": ms(r.baseline), "factor": cur / r.baseline, "calls": r.tick.calls, "p95_ms_all_time": ms(r.p95),
				"query": r.normalized, "threshold_factor": t.RegressionFactor}
			f.Recommendation = "Something changed for this statement: a new plan (run ANALYZE on its tables, compare EXPLAIN), lock waits, more rows, or a saturated host/pool (see the other findings from the same time)."
			f.Score = cur / r.baseline * 10
			out = append(out, f)
		}
		if r.window.lookups >= uint64(t.UncachedMinCalls) && r.window.hits == 0 {
			f := newFinding(KindQueryUncached, fpHex(r.fp), SeverityInfo, "Repeated cacheable read is never served from cache")
			perSec := float64(r.window.lookups) / s.Window.Seconds()
			if totalNs > 0 && float64(r.window.ns)/float64(totalNs) >= t.TopTimeShare {
				f.Severity = SeverityWarning
			}
			f.Evidence = win
			f.Evidence.Summary = fmt.Sprintf("%d cacheable executions (%.1f/s), 0 cache hits, mean %.2f ms: %s",
				r.window.lookups, perSec, ms(r.windowMean()), shorten(r.normalized, 120))
			f.Evidence.Values = map[string]any{"fingerprint": fpHex(r.fp), "database": r.database, "calls": r.window.lookups,
				"per_second": perSec, "mean_ms": ms(r.windowMean()), "query": r.normalized}
			f.Recommendation = fmt.Sprintf("Serve it from the result cache with a TTL the application tolerates (writes to its tables invalidate it): add to rules: - {name: cache-%s, match: {fingerprint: %q, database: [%s]}, cache: {ttl: 30s}}",
				fpHex(r.fp), fpHex(r.fp), r.database)
			if len(r.rules) > 0 {
				// Already under a rule: its keys (parameters) just don't
				// repeat within the TTL, or writes invalidate it first.
				f.Title = "Cached read never hits: its keys don't repeat within the TTL"
				f.Severity = SeverityInfo
				f.Evidence.Values["rules"] = r.rules
				f.Recommendation = fmt.Sprintf("Rules %v already cache it, but no execution was served from the cache: the parameters differ every time, or writes to its tables invalidate it first. Raise the TTL if the same keys come back later, or drop the cache action to save the fill work.", r.rules)
			}
			f.Score = float64(r.window.ns) / 1e9
			out = append(out, f)
		}
		if r.window.calls > 0 {
			meanRows := float64(r.window.rows) / float64(r.window.calls)
			if meanRows >= float64(t.HugeRows) {
				f := newFinding(KindQueryHugeRows, fpHex(r.fp), SeverityInfo, "Statement returns huge row counts")
				f.Evidence = win
				f.Evidence.Summary = fmt.Sprintf("%.0f rows per call on average (max %d) over %d calls: %s",
					meanRows, r.maxRows, r.window.calls, shorten(r.normalized, 120))
				f.Evidence.Values = map[string]any{"fingerprint": fpHex(r.fp), "database": r.database, "mean_rows": meanRows,
					"max_rows": r.maxRows, "calls": r.window.calls, "query": r.normalized, "threshold": t.HugeRows}
				f.Recommendation = fmt.Sprintf("Add LIMIT/pagination in the application, or cap it with a rule so one call cannot flood the client and the cache: rules: - {name: cap-%s, match: {fingerprint: %q}, max_rows: %d}",
					fpHex(r.fp), fpHex(r.fp), t.HugeRows)
				f.Score = meanRows / float64(t.HugeRows)
				out = append(out, f)
			}
		}
	}
	return out
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 { // do not cut a UTF-8 sequence
		n--
	}
	return s[:n] + "…"
}
