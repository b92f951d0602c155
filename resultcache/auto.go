package resultcache

import (
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
)

// autoCounter counts statement fingerprints for auto mode. Bounded by
// otter's size limit (W-TinyLFU keeps the frequent ones) and each counter
// lives auto_window from its first call, so "repeats" means N calls within
// one window.
type autoCounter struct {
	counts *otter.Cache[uint64, *atomic.Int32]
}

func newAutoCounter(maxFingerprints int, window time.Duration) *autoCounter {
	return &autoCounter{counts: otter.Must(&otter.Options[uint64, *atomic.Int32]{
		MaximumSize:      maxFingerprints,
		ExpiryCalculator: otter.ExpiryCreating[uint64, *atomic.Int32](window),
	})}
}

func (a *autoCounter) add(fp uint64) int {
	n, ok := a.counts.GetIfPresent(fp)
	if !ok {
		n, _ = a.counts.SetIfAbsent(fp, new(atomic.Int32))
	}
	return int(n.Add(1))
}

// Decide says whether an eligible statement should be looked up and with
// which TTL, from the mode, the statement's rule TTL (0: no rule) and its
// sluice comment. Call it once per execution (auto mode counts calls):
//
//   - nocache comment, or mode off: never;
//   - cache comment: its TTL, else the rule's, else default_ttl;
//   - a rule TTL: that TTL;
//   - auto mode: default_ttl once the fingerprint was seen auto_min_calls
//     times within auto_window.
func (c *Cache) Decide(fp uint64, ruleTTL time.Duration, dir Directive) (time.Duration, bool) {
	switch {
	case c.cfg.Mode == ModeOff || dir.NoCache:
		return 0, false
	case dir.Cache:
		if dir.TTL > 0 {
			return dir.TTL, true
		}
		if ruleTTL > 0 {
			return ruleTTL, true
		}
		return c.cfg.DefaultTTL, true
	case ruleTTL > 0:
		return ruleTTL, true
	case c.cfg.Mode == ModeAuto:
		if c.auto.add(fp) >= c.cfg.AutoMinCalls {
			return c.cfg.DefaultTTL, true
		}
	}
	return 0, false
}
