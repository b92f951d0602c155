package resultcache

import (
	"sync/atomic"
	"time"
)

// logEvery lets a recurring failure (Redis down) be logged once per interval
// rather than once per query.
type logEvery struct {
	every time.Duration
	last  atomic.Int64
}

// ok reports whether the caller may log now, and claims the slot.
func (l *logEvery) ok() bool {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if last != 0 && now-last < int64(l.every) {
		return false
	}
	return l.last.CompareAndSwap(last, now)
}
