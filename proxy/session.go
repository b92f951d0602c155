package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/resultcache"
	"github.com/sluice-proxy/sluice/rewrite"
)

// clientState is where a client is; monitor/ reads it, nothing else keeps
// its own bookkeeping.
type clientState int32

const (
	clientLogin   clientState = iota // startup and authentication
	clientIdle                       // no request in flight
	clientWaiting                    // waiting for a server from the pool
	clientActive                     // a server is working for it
)

func (c clientState) String() string {
	return [...]string{"login", "idle", "waiting", "active"}[c]
}

// flushThreshold bounds what a client may queue before Sync: past it the
// pending messages stream to a server rather than grow in memory.
const flushThreshold = 256 << 10

// session is one client connection. Its goroutine reads the client; while
// a server is linked, a pump goroutine relays the server's replies (see
// relay.go). Both sides meet under mu.
type session struct {
	srv  *Server
	id   uint64
	conn net.Conn // TLS replaces it during login
	raw  net.Conn // the accepted socket, for closing from other goroutines
	addr string   // the client's address, fixed
	log  zerolog.Logger
	fr   *frameReader

	wmu sync.Mutex // serialises writes to the client
	cw  *clientWriter

	db, user, app string
	pool          *pool
	mode          string
	pid           uint32
	secret        [4]byte

	state atomic.Int32
	since atomic.Int64
	// cancelWait takes a CancelRequest that arrives while the client waits
	// for a server.
	cancelWait chan struct{}
	wait       waiter // reused for every wait for a server

	mu          sync.Mutex
	server      *serverConn
	pumps       sync.WaitGroup // pumps running for this client (at most two: one returning, one linked)
	plan        []entry        // replies owed, oldest first from planHead
	planHead    int
	outstanding int  // ReadyForQuery messages still owed by the server
	unsynced    bool // extended messages sent to the server after the last Sync
	stopping    bool
	free        []*request
	wanted      map[string]string    // the client's settings, keys lower case
	wantedGen   uint64               // wanted's version (settingsGen, params.go)
	stmts       map[string]*prepared // named statements (transaction mode)
	failure     error                // why the server side failed, if it did

	pending     []byte // client messages not yet sent
	wbuf        []byte // what send writes to the server, reused
	lastFrame   int    // offset in pending of the last frame appended
	open        *request
	rsess       rewrite.Session
	recent      rewrite.Recent               // the shape of the client's last simple Query (rewriteStage)
	stmtDec     map[string]stmtFacts         // statement -> its decision and parameter types
	portals     map[string]*rewrite.Decision // portal -> its statement's decision
	batchDec    *rewrite.Decision            // first bound statement's decision, for stats
	execLimits  []execLimit                  // Executes in pending that carry a limit
	execFills   []execFill                   // Describe/Execute frames whose answer is cached
	parseFrames map[string][]byte            // Parse frames of the batch being looked up (alias pending)
	units       []unit                       // the units of that batch (cache_extended.go), reused
	contended   bool                         // the inline relay's last release handed the server to a waiter (loop)
	lastUnnamed []byte                       // the client's last Parse of the unnamed statement
	unnamedSeq  uint64                       // bumped at each such Parse
	scratch     []byte

	// Session state in transaction mode (sessionstate.go).
	startup     map[string]string // settings from the startup packet
	pinned      bool              // keeps its server until it leaves
	retry       retryState        // the batch a stale plan may retry (retry.go)
	pendingSets []rewrite.StateChange
	txFailed    bool

	// What the result cache must know about the session.
	cacheOff   bool                 // role, search_path or an untracked output setting changed
	temp       bool                 // created temporary objects
	txWrites   []*resultcache.Write // writes begun in the current transaction
	skipToSync bool
	loggedIn   bool
}

// request is one client request up to its ReadyForQuery: the unit that the
// stages see and that stats and the cache account for.
type request struct {
	start    time.Time
	end      time.Time // its ReadyForQuery arrived (zero: answered by Sluice)
	internal bool      // Sluice's own (settings): replies are not relayed
	rows     int64
	sqlstate string
	kind     byte // 'Q', 'F' or 'S'
	decision *rewrite.Decision

	// Result cache: a miss's ticket, the answer captured for it, and
	// whether this request was served from the cache.
	fill          *resultcache.Fill
	ttl           time.Duration
	capture       []byte
	maxCapture    int
	captureFailed bool
	cacheHit      bool
	fills         []*fillState        // extended-protocol units being cached
	stateDecs     []*rewrite.Decision // statements with session effects (extended protocol)
	sqlQ          *sqlQuery           // SQL PREPARE/EXECUTE/DEALLOCATE in a Query (sqlprepare.go)
}

// execLimit ties an Execute in pending (by offset) to the row limit of its
// statement, for the truncation notice.
type execLimit struct {
	off int
	d   *rewrite.Decision
}

// wantedChanged records a change of wanted.
func (s *session) wantedChanged() { s.wantedGen = settingsGen.Add(1) }

func (s *session) setState(c clientState) { s.setStateAt(c, time.Now()) }

// setStateAt is setState with the time already read.
func (s *session) setStateAt(c clientState, t time.Time) {
	s.state.Store(int32(c))
	s.since.Store(t.UnixNano())
}

func (s *session) newRequest(kind byte) *request {
	s.mu.Lock() // the relay recycles requests into free
	r := s.newRequestLocked(kind)
	s.mu.Unlock()
	return r
}

// newRequestLocked is newRequest for a caller holding s.mu.
func (s *session) newRequestLocked(kind byte) *request {
	var r *request
	if n := len(s.free); n > 0 {
		r = s.free[n-1]
		s.free = s.free[:n-1]
	}
	if r != nil {
		*r = request{}
	} else {
		r = &request{}
	}
	r.kind = kind
	r.start = time.Now()
	return r
}

// serve runs the session to its end; it never panics out.
func (s *session) serve() {
	defer func() {
		if r := recover(); r != nil {
			panicsTotal.Inc()
			s.log.Error().Interface("panic", r).Msg("BUG: session panicked")
		}
		s.finish()
	}()
	if err := s.login(); err != nil {
		s.disconnect(err)
		return
	}
	s.loop()
}

// loop reads client messages until the client leaves or breaks the rules.
func (s *session) loop() {
	for {
		if s.contended {
			// The last request gave its server to a waiting client.
			// Let the runnable goroutines go first: by the time this
			// one reads, its client has more often sent its next
			// message, and a read that finds nothing (then a park and
			// a poll) is saved.
			s.contended = false
			if s.fr.buffered() == 0 {
				runtime.Gosched()
			}
		}
		typ, frame, err := s.fr.next()
		if err != nil {
			if fe, ok := err.(*frameError); ok {
				s.disconnect(fatal(codeProtocolViolation, fe.msg))
			}
			return
		}
		bytesIn.Add(float64(len(frame)))
		if s.skipToSync && typ != 'S' && isExtended(typ) {
			continue
		}
		switch typ {
		case 'Q', 'F':
			s.lastFrame = len(s.pending)
			s.pending = append(s.pending, frame...)
			err = s.dispatch(typ)
		case 'P', 'B', 'D', 'E', 'C':
			s.lastFrame = len(s.pending)
			s.pending = append(s.pending, frame...)
			switch typ {
			case 'P':
				s.rewriteParse()
			case 'B':
				s.noteBind(body(frame))
			case 'E':
				s.noteExecute(body(frame))
			case 'C':
				s.noteClose(body(frame))
			}
			if len(s.pending) > flushThreshold {
				err = s.dispatch(0)
			}
		case 'H':
			s.pending = append(s.pending, frame...)
			err = s.dispatch(0)
		case 'S':
			if s.skipToSync {
				s.skipToSync = false
				s.writeClient(appendReady(nil, 'I'))
				continue
			}
			s.pending = append(s.pending, frame...)
			err = s.dispatch('S')
		case 'd', 'c', 'f':
			// COPY data goes to the server in COPY IN; outside COPY,
			// PostgreSQL ignores these messages, and so do we.
			if s.linked() {
				s.pending = append(s.pending, frame...)
				if s.fr.buffered() == 0 || len(s.pending) > 64<<10 || typ != 'd' {
					err = s.sendCopy()
				}
			}
		case 'X':
			return
		default:
			s.disconnect(fatal(codeProtocolViolation, fmt.Sprintf("invalid frontend message type %d", typ)))
			return
		}
		if err != nil {
			s.disconnect(err)
			return
		}
	}
}

func isExtended(typ byte) bool {
	switch typ {
	case 'P', 'B', 'D', 'E', 'C', 'H', 'S':
		return true
	}
	return false
}

func (s *session) linked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.server != nil
}

// dispatch runs the pending messages through the request stages. kind is
// the message that completes a request ('Q', 'F', 'S'), or 0 to stream what
// is pending without completing one (Flush, COPY data, long pipelines).
func (s *session) dispatch(kind byte) error {
	if kind != 0 {
		// A cancel for an earlier request is stale; from here until the
		// request reaches a server, one for this request is kept.
		select {
		case <-s.cancelWait:
		default:
		}
		r := s.open
		if r == nil {
			r = s.newRequest(kind)
		}
		s.setStateAt(clientActive, r.start)
		s.open = nil
		r.kind = kind
		if kind == 'S' {
			r.decision, s.batchDec = s.batchDec, nil
		}
		for _, st := range requestStages {
			done, err := st.run(s, r)
			if err != nil {
				return err
			}
			if done {
				return nil
			}
		}
		return nil
	}
	if s.open == nil {
		s.open = s.newRequest('S')
	}
	return s.send(nil)
}

// send links a server if none is linked and writes the pending messages to
// it. r, when non-nil, is the request these messages complete.
func (s *session) send(r *request) error {
	s.mu.Lock()
	sc := s.server
	fresh := sc == nil // linked below, unless relayed inline
	if sc == nil {
		s.mu.Unlock()
		got, err := s.pool.checkoutCancel(context.Background(), s.cancelWait, &s.wait)
		if err != nil {
			s.requestFailed(r, err)
			return nil
		}
		s.mu.Lock()
		sc = got
		s.server = sc
		s.wbuf = s.wbuf[:0]
		if q := settingsQuery(sc, s); q != "" {
			s.wbuf = appendQuery(s.wbuf, q)
			ir := s.newRequestLocked('Q')
			ir.internal = true
			s.push(entry{op: 'Q', req: ir})
		}
	} else {
		s.wbuf = s.wbuf[:0]
	}
	if r != nil {
		select {
		case <-s.cancelWait:
			// Cancelled before it reached a server: it never runs.
			if fresh {
				sc.link(s)
			}
			s.mu.Unlock()
			s.requestFailed(r, errWaitCanceled)
			return nil
		default:
		}
	}
	out := s.compile(sc, s.wbuf, r)
	synth := s.head() != nil && s.head().act == actSynth
	inline := s.inlineOK(r, fresh, out)
	if fresh && !inline {
		sc.link(s)
	}
	if clientState(s.state.Load()) != clientActive {
		s.setState(clientActive)
	}
	s.mu.Unlock()

	s.wbuf = out[:0]
	s.pending = s.pending[:0]
	if cap(s.pending) > 1<<20 {
		s.pending = nil
	}
	if synth {
		s.wmu.Lock()
		s.mu.Lock()
		pre := s.takeSynth(nil)
		s.mu.Unlock()
		s.cw.Write(pre)
		s.cw.Flush()
		s.wmu.Unlock()
	}
	if inline {
		return s.relayInline(sc, out)
	}
	if len(out) > 0 {
		if _, err := sc.conn.Write(out); err != nil {
			return s.serverLost(sc, err)
		}
	}
	return nil
}

// compile turns the pending client messages into what sc receives and
// queues the plan entries that the relay follows. The caller holds s.mu.
func (s *session) compile(sc *serverConn, out []byte, r *request) []byte {
	named := s.mode == "transaction"
	p := s.pending
	off := 0
	lim := s.execLimits
	s.retry.pending = 0
	for len(p) >= 5 {
		typ := p[0]
		n := int(binary.BigEndian.Uint32(p[1:5])) + 1
		frame := p[:n]
		p = p[n:]
		at := off
		off += n
		switch typ {
		case 'B', 'D':
			out = s.compileUnnamed(sc, typ, frame, out)
		case 'P':
			if len(frame) > 5 && frame[5] == 0 {
				s.lastUnnamed = append(s.lastUnnamed[:0], frame...)
				s.unnamedSeq++
				sc.unnamedBy, sc.unnamedSeq = s.id, s.unnamedSeq
			}
		}
		switch typ {
		case markRaise:
			code, rest, _ := cstring(body(frame))
			msg, _, _ := cstring(rest)
			out = s.appendRaise(out, code, msg)
			s.unsynced = true
			continue
		case 'Q', 'F', 'S':
			if typ == 'Q' && named {
				frame, out = s.compileQuery(sc, r, frame, out)
			} else {
				s.push(entry{op: typ, req: r})
			}
			if named {
				s.keepRetry(typ, out, frame)
			}
			s.unsynced = false
		case 'P', 'B', 'D', 'C':
			s.unsynced = true
			if typ == 'D' && len(s.execFills) > 0 {
				for _, f := range s.execFills {
					if f.descOff == at {
						s.push(entry{op: typ, fill: f.f})
						out = append(out, frame...)
						goto next
					}
				}
			}
			if named {
				out = s.compileNamed(sc, typ, frame, out)
				continue
			}
			s.push(entry{op: typ})
		case 'E':
			s.unsynced = true
			s.retry.busy = true
			e := entry{op: typ}
			if len(lim) > 0 && lim[0].off == at {
				e.limit = lim[0].d
				lim = lim[1:]
			}
			for _, f := range s.execFills {
				if f.execOff == at {
					e.fill = f.f
				}
			}
			s.push(e)
		case 'H':
			s.unsynced = true
		}
		out = append(out, frame...)
	next:
	}
	s.execLimits = s.execLimits[:0]
	s.execFills = s.execFills[:0]
	return out
}

// compileUnnamed makes sure a Bind or Describe of the unnamed statement
// finds this client's statement on sc: in transaction mode a later
// transaction may run on another server, or another client may have
// replaced it; a Parse Sluice answered from the cache never reached it.
func (s *session) compileUnnamed(sc *serverConn, typ byte, frame, out []byte) []byte {
	b := body(frame)
	if typ == 'B' {
		_, rest, ok := cstring(b)
		if !ok || len(rest) == 0 || rest[0] != 0 {
			return out
		}
	} else if len(b) < 2 || b[0] != 'S' || b[1] != 0 {
		return out
	}
	if len(s.lastUnnamed) == 0 || (sc.unnamedBy == s.id && sc.unnamedSeq == s.unnamedSeq) {
		return out
	}
	sc.unnamedBy, sc.unnamedSeq = s.id, s.unnamedSeq
	s.push(entry{op: 'P', act: actSwallow})
	return append(out, s.lastUnnamed...)
}

// noteBind remembers which portal runs a statement with a row limit.
func (s *session) noteBind(b []byte) {
	if len(s.stmtDec) == 0 && len(s.portals) == 0 {
		return
	}
	portal, rest, ok := cstring(b)
	if !ok {
		return
	}
	stmt, _, _ := cstring(rest)
	f, ok := s.stmtDec[stmt]
	if ok {
		f = s.current(stmt, f)
	}
	if ok && s.batchDec == nil {
		s.batchDec = f.d
	}
	if ok && (f.d.MaxRows > 0 || writes(f.d) || hasState(f.d) || callsFunctions(f.d)) {
		s.portals[portal] = f.d
	} else {
		delete(s.portals, portal)
	}
}

// noteExecute marks an Execute whose portal has a row limit.
func (s *session) noteExecute(b []byte) {
	if len(s.portals) == 0 {
		return
	}
	portal, _, _ := cstring(b)
	d := s.portals[portal]
	if d == nil {
		return
	}
	if hasState(d) {
		if pe := s.sessionStateCheck(d, false); pe != nil {
			s.pending = appendRaiseMark(s.pending[:s.lastFrame], pe.Code, pe.Message)
			return
		}
		if s.open == nil {
			s.open = s.newRequest('S')
		}
		s.open.stateDecs = append(s.open.stateDecs, d)
	}
	if d.MaxRows > 0 {
		s.execLimits = append(s.execLimits, execLimit{off: s.lastFrame, d: d})
	}
	if c := s.srv.snapshot().cache; c != nil {
		s.trackState(d)
		s.invalidateWrites(c, d)
	}
}

// requestFailed answers a request that could not get a server: an
// ErrorResponse, then ReadyForQuery for a Query or Sync, or skipping to
// Sync as PostgreSQL does after an error in an extended batch.
func (s *session) requestFailed(r *request, err error) {
	pe := asPgError(err)
	if pe.Severity == "FATAL" || pe.Severity == "PANIC" {
		pe = &pgError{Severity: "ERROR", Code: pe.Code, Message: pe.Message, Detail: pe.Detail, Hint: pe.Hint}
	}
	s.pending = s.pending[:0]
	out := appendErrorResponse(nil, pe)
	if r != nil {
		out = appendReady(out, 'I')
	} else {
		s.skipToSync = true
		s.open = nil
	}
	s.setState(clientIdle)
	s.writeClient(out)
	errorsTotal.WithLabelValues(pe.Code[:2]).Inc()
}

// writeClient writes and flushes b when no server reply is being relayed.
func (s *session) writeClient(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if _, err := s.cw.Write(b); err != nil {
		return err
	}
	bytesOut.Add(float64(len(b)))
	return s.cw.Flush()
}

// disconnect is the one way a session ends with an error: log once, tell
// the client if it can still hear, and let finish clean up.
func (s *session) disconnect(err error) {
	if err == errClientGone || err == errCancelHandled || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return
	}
	pe := asPgError(err)
	if pe.Severity != "FATAL" {
		pe = &pgError{Severity: "FATAL", Code: pe.Code, Message: pe.Message, Detail: pe.Detail, Hint: pe.Hint}
	}
	s.log.Info().Str("code", pe.Code).Str("reason", pe.Message).Msg("client disconnected")
	s.conn.SetWriteDeadline(time.Now().Add(time.Second))
	s.writeClient(appendErrorResponse(nil, pe))
	if len(pe.Code) >= 2 {
		errorsTotal.WithLabelValues(pe.Code[:2]).Inc()
	}
}

// serverLost handles a server that failed under a client: the client is
// told and closed (its transaction is gone), the server discarded.
func (s *session) serverLost(sc *serverConn, err error) error {
	s.mu.Lock()
	if s.failure == nil {
		s.failure = err
	}
	s.mu.Unlock()
	return fatal(codeConnectionFailure, "sluice: server connection lost: "+err.Error())
}

// finish releases everything the session holds, whatever path ended it.
func (s *session) finish() {
	s.mu.Lock()
	s.stopping = true
	sc := s.server
	s.server = nil
	outstanding, unsynced, failed := s.outstanding, s.unsynced, s.failure != nil
	s.mu.Unlock()
	if sc != nil {
		sc.conn.SetReadDeadline(time.Now()) // stops the linked pump
	}
	// Also waits for a pump that just released its server and is still
	// flushing the client's last reply, so nothing writes after Close.
	s.pumps.Wait()
	if sc != nil {
		sc.conn.SetReadDeadline(time.Time{})
		sc.deadline = false
		s.giveBack(sc, outstanding, unsynced || failed)
	}
	s.commitWrites()
	s.conn.Close()
	s.srv.forget(s)
	s.log.Debug().Msg("client closed")
}

// giveBack returns a server the client left behind only when it is clean:
// a query in flight is cancelled and the server closed (PostgreSQL then
// rolls back); an open transaction is rolled back; a session-mode server
// runs server_reset_query.
func (s *session) giveBack(sc *serverConn, outstanding int, dirty bool) {
	st := s.pool.settings.Load()
	if outstanding > 0 {
		sc.cancel(st.target.connectTimeout)
		s.pool.discard(sc)
		return
	}
	if dirty || sc.fr.buffered() != 0 {
		s.pool.discard(sc)
		return
	}
	timeout := st.target.connectTimeout
	if sc.txStatus.Load() != 'I' {
		if err := sc.roundTrip("ROLLBACK", timeout); err != nil {
			s.pool.discard(sc)
			return
		}
	}
	if (s.mode == "session" || s.pinned) && st.resetQuery != "" {
		if err := sc.roundTrip(st.resetQuery, timeout); err != nil {
			s.pool.discard(sc)
			return
		}
		// The reset (DISCARD ALL) dropped settings and statements alike.
		clear(sc.applied)
		sc.appliedChanged()
		sc.forgetAll()
		sc.unnamedBy = 0
	}
	s.pool.checkin(sc)
}

// ctx bounds work done on the client's behalf outside the relay.
func (s *session) ctx() context.Context { return context.Background() }

// sendCopy streams COPY data to the linked server.
func (s *session) sendCopy() error {
	s.mu.Lock()
	sc := s.server
	s.mu.Unlock()
	if sc == nil {
		s.pending = s.pending[:0]
		return nil
	}
	_, err := sc.conn.Write(s.pending)
	s.pending = s.pending[:0]
	if err != nil {
		return s.serverLost(sc, err)
	}
	return nil
}

// noteSessionReset forgets the client's statements when it runs DISCARD
// ALL or DEALLOCATE ALL (only its own: servers keep the shared ones).
func (s *session) noteSessionReset(q []byte) {
	if isResetAll(q) {
		clear(s.stmts)
	}
}

// noteClose forgets what Sluice knew of a closed statement.
func (s *session) noteClose(b []byte) {
	if len(b) < 2 || b[0] != 'S' {
		return
	}
	name, _, _ := cstring(b[1:])
	delete(s.stmtDec, name)
}

// Per-client buffer sizes: small enough that thousands of idle clients
// stay cheap (see bench/idleconns), large enough that typical requests and
// replies move in one read and one write. Larger messages bypass them.
const (
	clientReadBuffer  = 4 << 10
	clientWriteBuffer = 4 << 10
)
