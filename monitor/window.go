package monitor

import (
	"time"
)

// fpWindow is what the analyzer sees of one fingerprint after a tick.
type fpWindow struct {
	fp                   uint64
	database, normalized string
	example              string
	tick, window         tickDelta
	baseline             float64 // EWMA of earlier tick means (s); 0 if none
	baselineTicks        int
	maxRows              int64
	p95                  float64
	calls                uint64
	lastSeen             time.Time
	rules                []string // rules applied to it (read-only copy)
}

func (w *fpWindow) windowMean() float64 {
	if w.window.calls == 0 {
		return 0
	}
	return float64(w.window.ns) / 1e9 / float64(w.window.calls)
}

func (w *fpWindow) tickMean() float64 {
	if w.tick.calls == 0 {
		return 0
	}
	return float64(w.tick.ns) / 1e9 / float64(w.tick.calls)
}

// ewmaAlpha weighs a new tick into a fingerprint's latency baseline; 0.2
// follows a sustained change within about ten ticks while one slow tick
// moves it little.
const ewmaAlpha = 0.2

// roll closes an analysis tick: it computes every entry's delta, keeps it
// in the entry's ring, decays usage and returns the window views. The
// baseline in each view is the one before this tick was folded in, so the
// analyzer can compare the tick against its own past.
func (t *fpTable) roll(now time.Time, windowTicks int) []fpWindow {
	if windowTicks < 1 {
		windowTicks = 1
	}
	if windowTicks > maxWindowTicks {
		windowTicks = maxWindowTicks
	}
	out := make([]fpWindow, 0, t.entries.Load())
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for _, head := range sh.m {
			for e := head; e != nil; e = e.next {
				d := tickDelta{
					calls: e.calls - e.prevCalls, errors: e.errors - e.prevErrors,
					hits: e.hits - e.prevHits, lookups: e.lookups - e.prevLks,
					rows: e.rows - e.prevRows, ns: e.totalNs - e.prevNs,
				}
				e.prevCalls, e.prevErrors, e.prevHits, e.prevLks = e.calls, e.errors, e.hits, e.lookups
				e.prevRows, e.prevNs = e.rows, e.totalNs
				n := len(e.ticks)
				e.tickPos = (e.tickPos + 1) % n
				e.ticks[e.tickPos] = d
				e.usage = e.usage/2 + float64(d.calls)
				if d.calls > 0 {
					e.lastSeen = now
				}
				w := fpWindow{fp: e.fp, database: e.database, normalized: e.normalized,
					example: e.example, tick: d, baseline: e.ewma, baselineTicks: e.ewmaTicks,
					maxRows: e.maxRows, calls: e.calls, lastSeen: e.lastSeen, p95: e.sk.Quantile(0.95),
					rules: e.rules}
				for k := 0; k < windowTicks && k < n; k++ {
					w.window.add(e.ticks[(e.tickPos-k+n)%n])
				}
				if d.calls > 0 {
					m := float64(d.ns) / 1e9 / float64(d.calls)
					if e.ewmaTicks == 0 {
						e.ewma = m
					} else {
						e.ewma += ewmaAlpha * (m - e.ewma)
					}
					e.ewmaTicks++
				}
				out = append(out, w)
			}
		}
		sh.mu.Unlock()
	}
	return out
}
