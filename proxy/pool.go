package proxy

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// poolKey names a pool: one per (database, user) as clients see them.
type poolKey struct{ db, user string }

// poolSettings is a pool's part of a config snapshot; a reload swaps it.
type poolSettings struct {
	target         target
	mode           string
	size, minSize  int
	idleTimeout    time.Duration
	lifetime       time.Duration
	waitTimeout    time.Duration
	resetQuery     string
	checkDelay     time.Duration
	checkQuery     string
	maxMessageSize int
	maxPrepared    int
	onSessionState string
}

// pool hands out server connections: idle ones first (LIFO, warmest), new
// ones while under size, else clients queue FIFO until query_wait_timeout.
type pool struct {
	key      poolKey
	settings atomic.Pointer[poolSettings]

	mu      sync.Mutex
	idle    []*serverConn
	total   int // open or connecting
	active  int
	waiters []*waiter
	closed  bool
	// params is the ParameterStatus set of this pool's servers as first
	// seen; a new client's startup reply is built from it.
	params map[string]string
	// searchPath is the servers' default search_path, read once.
	searchPath atomic.Pointer[string]

	maxWaitNanos   atomic.Int64 // longest current wait, for SHOW POOLS style stats
	totalQueries   atomic.Int64
	totalXacts     atomic.Int64
	totalWaitNanos atomic.Int64
	onWait         func(time.Duration)
}

// waiter is a client queued for a server. A session keeps one for all its
// waits (the channel is always drained when a wait ends), so queueing costs
// no allocation on the request path.
type waiter struct {
	ch     chan *serverConn // nil value: a slot freed up, try again
	since  time.Time
	timer  *time.Timer // query_wait_timeout, reused across waits
	onWait func()      // called when the client starts to wait
}

func newPool(key poolKey, s *poolSettings) *pool {
	p := &pool{key: key}
	p.settings.Store(s)
	return p
}

// errPoolWait is the client-visible error for query_wait_timeout.
func (p *pool) errWait(d time.Duration) *pgError {
	return &pgError{Severity: "ERROR", Code: codeTooManyConnections, Message: fmt.Sprintf(
		"sluice: no server connection for database %q user %q became free within query_wait_timeout (%s)", p.key.db, p.key.user, d)}
}

// checkout returns a server for exclusive use; the caller must give it back
// with checkin or discard on every path.
func (p *pool) checkout(ctx context.Context) (*serverConn, error) {
	return p.checkoutCancel(ctx, nil, nil)
}

// errWaitCanceled is what a client that cancelled while waiting for a
// server sees: the statement never ran, as if PostgreSQL had cancelled it.
var errWaitCanceled = &pgError{Severity: "ERROR", Code: codeQueryCanceled, Message: "canceling statement due to user request"}

// checkoutCancel is checkout that also gives up when cancel fires (a
// CancelRequest for a client still waiting for a server). w, when not nil,
// is the caller's reusable waiter.
func (p *pool) checkoutCancel(ctx context.Context, cancel <-chan struct{}, w *waiter) (*serverConn, error) {
	s := p.settings.Load()
	// The clock is read only once a client has to wait (or dial): most
	// checkouts find an idle server.
	var start, deadline time.Time
	reused := w != nil
	var own *time.Timer
	defer func() {
		if own != nil {
			own.Stop()
		}
	}()
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, fatal(codeAdminShutdown, "sluice: pool is closed")
		}
		if n := len(p.idle); n > 0 {
			sc := p.idle[n-1]
			p.idle = p.idle[:n-1]
			p.active++
			p.mu.Unlock()
			if sc, ok := p.vet(sc, s); ok {
				p.noteWait(start)
				return sc, nil
			}
			continue
		}
		if p.total < s.size {
			p.total++
			p.active++
			p.mu.Unlock()
			if start.IsZero() {
				start = time.Now()
			}
			sc, err := p.dial(ctx, s)
			if err != nil {
				p.mu.Lock()
				p.total--
				p.active--
				p.wakeOneLocked(nil)
				p.mu.Unlock()
				return nil, err
			}
			p.noteWait(start)
			return sc, nil
		}
		if start.IsZero() {
			start = time.Now()
			deadline = start.Add(s.waitTimeout)
		}
		if w == nil {
			w = &waiter{}
		}
		if w.ch == nil {
			w.ch = make(chan *serverConn, 1)
		}
		w.since = start
		p.waiters = append(p.waiters, w)
		p.mu.Unlock()
		if w.onWait != nil {
			w.onWait()
		}

		// A reused waiter keeps its timer armed between waits: deadlines
		// only grow, so a timer set for an earlier wait fires early, and
		// is then re-armed for what is left (once per query_wait_timeout
		// at most), instead of a Reset and a Stop for every wait.
		if w.timer == nil {
			w.timer = time.NewTimer(time.Until(deadline))
			if !reused {
				own = w.timer
			}
		}
	wait:
		select {
		case sc := <-w.ch:
			if sc == nil {
				continue
			}
			p.noteWait(start)
			return sc, nil
		case <-w.timer.C:
			if left := time.Until(deadline); left > 0 {
				w.timer.Reset(left)
				goto wait
			}
			if sc := p.cancelWait(w); sc != nil {
				p.noteWait(start)
				return sc, nil
			}
			return nil, p.errWait(s.waitTimeout)
		case <-ctx.Done():
			if sc := p.cancelWait(w); sc != nil {
				p.checkin(sc)
			}
			return nil, ctx.Err()
		case <-cancel:
			if sc := p.cancelWait(w); sc != nil {
				p.checkin(sc)
			}
			return nil, errWaitCanceled
		}
	}
}

// cancelWait removes w from the queue; if a server was handed over in the
// meantime it is returned.
func (p *pool) cancelWait(w *waiter) *serverConn {
	p.mu.Lock()
	for i, x := range p.waiters {
		if x == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			p.mu.Unlock()
			return nil
		}
	}
	p.mu.Unlock()
	// Already handed over: the value is in the channel (maybe a nil slot).
	sc := <-w.ch
	if sc == nil {
		p.mu.Lock()
		p.wakeOneLocked(nil)
		p.mu.Unlock()
	}
	return sc
}

// noteWait records a checkout; a zero start is one that did not wait.
func (p *pool) noteWait(start time.Time) {
	var d time.Duration
	if !start.IsZero() {
		d = time.Since(start)
	}
	p.totalWaitNanos.Add(int64(d))
	if p.onWait != nil {
		p.onWait(d)
	}
	poolWaitSeconds.Observe(d.Seconds())
}

// vet checks an idle server before reuse: too old servers are closed, and
// one idle for longer than server_check_delay is tested first.
func (p *pool) vet(sc *serverConn, s *poolSettings) (*serverConn, bool) {
	now := time.Now()
	if s.lifetime > 0 && now.Sub(sc.created) > s.lifetime {
		p.discard(sc)
		return nil, false
	}
	if s.checkDelay > 0 && now.Sub(sc.lastUsed) > s.checkDelay {
		sc.setState(serverTesting)
		if err := sc.roundTrip(s.checkQuery, s.target.connectTimeout); err != nil || sc.txStatus.Load() != 'I' {
			p.discard(sc)
			return nil, false
		}
		now = time.Now()
	}
	sc.setStateAt(serverActive, now)
	return sc, true
}

func (p *pool) dial(ctx context.Context, s *poolSettings) (*serverConn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.target.connectTimeout)
	defer cancel()
	sc, err := dialServer(ctx, s.target, s.maxMessageSize)
	if err != nil {
		serverConnectErrors.Inc()
		return nil, err
	}
	sc.pool = p
	p.mu.Lock()
	first := p.params == nil
	if first {
		p.params = make(map[string]string, len(sc.reported))
		for k, v := range sc.reported {
			p.params[k] = v
		}
	}
	p.mu.Unlock()
	if first {
		// search_path is not reported (before PostgreSQL 18) but the
		// result cache resolves unqualified names with it.
		if sp, err := sc.show("search_path", s.target.connectTimeout); err == nil {
			p.searchPath.Store(&sp)
		}
	}
	serversOpened.Inc()
	sc.setState(serverActive)
	return sc, nil
}

// checkin gives a clean server (ReadyForQuery 'I', nothing outstanding)
// back: to the longest waiting client, else to the idle stack.
func (p *pool) checkin(sc *serverConn) { p.checkinAt(sc, time.Now()) }

// checkinAt is checkin for a caller that has just read the clock. It
// reports whether the server went straight to a waiting client.
func (p *pool) checkinAt(sc *serverConn, now time.Time) (handedOff bool) {
	s := p.settings.Load()
	p.mu.Lock()
	if p.closed || p.total > s.size || (s.lifetime > 0 && now.Sub(sc.created) > s.lifetime) {
		p.mu.Unlock()
		p.discard(sc)
		return false
	}
	if len(p.waiters) > 0 {
		w := p.popWaiterLocked()
		p.mu.Unlock()
		sc.setStateAt(serverActive, now)
		w.ch <- sc
		return true
	}
	p.active--
	sc.lastUsed = now
	sc.setStateAt(serverIdle, now)
	p.idle = append(p.idle, sc)
	p.mu.Unlock()
	return false
}

// discard closes a server that can't be reused and frees its slot.
func (p *pool) discard(sc *serverConn) {
	sc.close()
	serversClosed.Inc()
	p.mu.Lock()
	p.total--
	p.active--
	p.wakeOneLocked(nil)
	p.mu.Unlock()
}

// wakeOneLocked tells the first waiter a slot is free.
func (p *pool) wakeOneLocked(sc *serverConn) {
	if len(p.waiters) == 0 {
		return
	}
	p.popWaiterLocked().ch <- sc
}

// popWaiterLocked takes the first waiter off the queue, moving the rest
// down rather than slicing the front away: the queue keeps its array, so
// waits allocate nothing once it has grown to the clients that wait.
func (p *pool) popWaiterLocked() *waiter {
	w := p.waiters[0]
	n := copy(p.waiters, p.waiters[1:])
	p.waiters[n] = nil
	p.waiters = p.waiters[:n]
	return w
}

// maintain closes idle servers past server_idle_timeout (down to
// min_pool_size) or server_lifetime, and opens servers up to min_pool_size.
func (p *pool) maintain(ctx context.Context) {
	s := p.settings.Load()
	now := time.Now()
	var drop []*serverConn
	p.mu.Lock()
	keep := p.idle[:0]
	for _, sc := range p.idle {
		expired := s.lifetime > 0 && now.Sub(sc.created) > s.lifetime
		idleTooLong := s.idleTimeout > 0 && now.Sub(sc.lastUsed) > s.idleTimeout && p.total-len(drop) > s.minSize
		if expired || idleTooLong || p.total-len(drop) > s.size {
			drop = append(drop, sc)
			continue
		}
		keep = append(keep, sc)
	}
	p.idle = keep
	p.total -= len(drop)
	need := s.minSize - p.total
	if need > 0 {
		p.total += need
	}
	maxWait := time.Duration(0)
	for _, w := range p.waiters {
		if d := now.Sub(w.since); d > maxWait {
			maxWait = d
		}
	}
	p.mu.Unlock()
	p.maxWaitNanos.Store(int64(maxWait))
	for _, sc := range drop {
		sc.close()
		serversClosed.Inc()
	}
	for i := 0; i < need; i++ {
		sc, err := p.dial(ctx, s)
		p.mu.Lock()
		if err != nil {
			p.total--
			p.mu.Unlock()
			continue
		}
		p.active++ // checkin counts it back out of active
		p.mu.Unlock()
		p.checkin(sc)
	}
}

// close shuts the pool: idle servers close now, active ones at checkin.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.total -= len(idle)
	waiters := p.waiters
	p.waiters = nil
	p.mu.Unlock()
	for _, sc := range idle {
		sc.close()
	}
	for _, w := range waiters {
		w.ch <- nil
	}
}

// defaultSearchPath is the servers' search_path when the client set none.
func (p *pool) defaultSearchPath() string {
	if sp := p.searchPath.Load(); sp != nil {
		return *sp
	}
	return `"$user", public`
}

// knownParams is a copy of the pool's server parameters, nil before its
// first server connected.
func (p *pool) knownParams() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.params == nil {
		return nil
	}
	out := make(map[string]string, len(p.params))
	for k, v := range p.params {
		out[k] = v
	}
	return out
}

// busy reports whether a checkout would have to wait.
func (p *pool) busy() bool {
	s := p.settings.Load()
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle) == 0 && p.total >= s.size
}
