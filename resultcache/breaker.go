package resultcache

import (
	"sync"
	"sync/atomic"
	"time"
)

// breakerState is the Redis circuit breaker's state.
type breakerState int

const (
	// breakerClosed: Redis is used.
	breakerClosed breakerState = iota
	// breakerOpen: Redis is not used, and neither is the cache (see
	// Cache.usable): other instances' invalidations can't reach us.
	breakerOpen
	// breakerProbing: the cooldown passed and one probe (ping, replay of
	// dirty databases, L1 flush) is running.
	breakerProbing
)

// breaker opens after cfg.Failures consecutive failures, or at once when an
// invalidation could not be published (trip), and lets one probe through
// after cfg.Cooldown.
type breaker struct {
	cfg      BreakerConfig
	mu       sync.Mutex
	state    breakerState
	failures int
	openedAt time.Time
	// retrip: an invalidation was lost while probing; the probe must not
	// close the breaker, since its replay may have missed it.
	retrip bool
	now    func() time.Time
	// isClosed mirrors state == breakerClosed for the lock-free check on
	// every lookup.
	isClosed atomic.Bool
}

func newBreaker(cfg BreakerConfig) *breaker {
	b := &breaker{cfg: cfg, now: time.Now}
	b.isClosed.Store(true)
	return b
}

// closed reports whether Redis (and the cache) may be used now.
func (b *breaker) closed() bool { return b.isClosed.Load() }

// probeDue moves an open breaker whose cooldown passed to probing and
// reports whether the caller must run the probe.
func (b *breaker) probeDue() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != breakerOpen || b.now().Sub(b.openedAt) < b.cfg.Cooldown {
		return false
	}
	b.state = breakerProbing
	b.isClosed.Store(false)
	metricBreakerState.Set(float64(breakerProbing))
	return true
}

func (b *breaker) success() {
	b.mu.Lock()
	if b.state == breakerClosed {
		b.failures = 0
	}
	b.mu.Unlock()
}

// failure counts a failed operation; it reports whether the breaker opened.
func (b *breaker) failure() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != breakerClosed {
		return false
	}
	b.failures++
	if b.failures >= b.cfg.Failures {
		b.openLocked()
		return true
	}
	return false
}

// trip opens the breaker at once (an invalidation was lost); it reports
// whether it was closed before.
func (b *breaker) trip() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	was := b.state == breakerClosed
	if b.state == breakerProbing {
		b.retrip = true
		return false
	}
	b.openLocked()
	return was
}

func (b *breaker) openLocked() {
	b.state = breakerOpen
	b.isClosed.Store(false)
	b.openedAt = b.now()
	b.failures = 0
	metricBreakerState.Set(float64(breakerOpen))
}

// probeDone ends a probe: closed on success, open again (new cooldown) on
// failure.
func (b *breaker) probeDone(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	retrip := b.retrip
	b.retrip = false
	if ok && !retrip {
		b.state = breakerClosed
		b.isClosed.Store(true)
		b.failures = 0
		metricBreakerState.Set(float64(breakerClosed))
		return
	}
	b.openLocked()
}
