package proxy

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"runtime"
	"time"

	"github.com/sluice-proxy/sluice/rewrite"
)

// relayVars is what the relay counts for the request in flight. It moves
// with the request when an inline relay hands the server over to the
// server's own goroutine (inline.go).
type relayVars struct {
	rows, rsRows int64 // rows of the request, of the current result set
	stmtIdx      int   // statement of a multi-statement Query
	sqlstate     string
}

// pumpEnd says how a pump ended.
type pumpEnd uint8

const (
	pumpReleased pumpEnd = iota // the server went back to the pool
	pumpStopped                 // stopped by finish, or the server failed (handled)
	pumpHeld                    // inline: request answered, the client keeps the server
	pumpHandover                // inline: the server's goroutine must go on (slow reply, COPY)
)

// pump relays server replies to the client while sc is linked: frames are
// copied into the client's buffered writer as they come and flushed when
// the server's input runs dry, so one flush covers a whole batch. It
// follows the plan (plan.go) to match replies to client messages, and at
// each ReadyForQuery completes a request and, in transaction mode, gives
// the server back when nothing of the client's is outstanding.
//
// inline is set when the client's own goroutine runs the pump for one
// request (inline.go): it then also returns when that request is answered,
// when the reply is slow (the read deadline), and when the server waits
// for COPY data, and v says where the request stands.
func (s *session) pump(sc *serverConn, v relayVars, inline bool) (pumpEnd, relayVars) {
	locked := false
	var pre, post []byte
	unlock := func() {
		if locked {
			s.cw.Flush()
			s.wmu.Unlock()
			locked = false
		}
	}
	for {
		if locked && sc.fr.buffered() == 0 {
			unlock()
		}
		typ, frame, err := sc.fr.next()
		if err != nil {
			unlock()
			if inline && isTimeout(err) {
				return pumpHandover, v
			}
			s.pumpStopped(sc, err)
			return pumpStopped, v
		}
		if !locked {
			s.wmu.Lock()
			locked = true
		}
		relay := true
		switch typ {
		case 'N', 'A':
			if typ == 'N' {
				s.mu.Lock()
				if e := s.head(); e != nil && e.req != nil && e.req.fill != nil {
					e.req.captureFailed = true
				}
				s.mu.Unlock()
			}
			s.writeRelayed(frame)
			continue
		case 'S':
			if len(frame) > 5 {
				s.mu.Lock()
				internal := false
				if e := s.head(); e != nil && e.req != nil && e.req.internal {
					internal = true
				}
				s.mu.Unlock()
				s.noteParameter(sc, body(frame), internal)
				if !internal {
					s.writeRelayed(frame)
				}
			}
			continue
		case 'D':
			v.rows++
			v.rsRows++
		case 'E':
			if v.sqlstate == "" {
				v.sqlstate = errorCode(body(frame))
			}
		case 'C':
			if isResetAllTag(body(frame)) {
				sc.forgetAll()
				clear(sc.applied)
				sc.appliedChanged()
			}
		case 'Z':
			if len(frame) < 6 {
				unlock()
				s.pumpStopped(sc, errors.New("malformed ReadyForQuery"))
				return pumpStopped, v
			}
			sc.txStatus.Store(uint32(frame[5]))
		}

		s.mu.Lock()
		pre = s.takeSynth(pre[:0])
		post = post[:0]
		var finished *request
		release := false
		var releasedAt time.Time
		drained := false
		commit := false
		hidden := false // the CommandComplete of a statement Sluice put in a Query
		if e := s.head(); e != nil {
			if typ == 'C' && e.op == 'Q' && e.req != nil && e.req.sqlQ != nil {
				hidden = s.sqlComplete(e.req.sqlQ, body(frame))
				relay = !hidden
			}
			if r := e.req; r != nil && r.fill != nil && !r.captureFailed && !hidden {
				switch typ {
				case 'T', 'D', 'C', 'I':
					if len(r.capture)+len(frame) <= r.maxCapture {
						r.capture = append(r.capture, frame...)
					} else {
						r.captureFailed = true
					}
				case 'Z':
				default:
					r.captureFailed = true
				}
			}
			if e.fill != nil && !hidden {
				e.fill.capture(e.op, typ, frame)
			}
			if typ == 'Z' && frame[5] == 'I' && len(s.txWrites) > 0 {
				commit = true
			}
			if typ == 'C' && e.op == 'Q' && !hidden {
				post = appendTruncationNotice(post, e, v.stmtIdx, v.rsRows)
			}
			if typ != 'E' && (e.act == actSwallow || (e.req != nil && e.req.internal)) {
				relay = false
			}
			if typ == 'E' && e.global != "" {
				frame = renameInError(frame, e.global, e.name)
			}
			switch {
			case typ == 'E' && e.retry != 0 && s.retryStale(sc, e, frame):
				relay, v.sqlstate = false, ""
			case typ == 'E' && e.op != 'Q' && e.op != 'F' && e.op != 'S':
				// PostgreSQL skips the rest of an extended batch up to Sync.
				s.undo(e)
				s.pop()
				s.skipAfterError()
			case e.completes(typ):
				if typ == 'C' {
					post = appendTruncationNotice(post, e, v.stmtIdx, v.rsRows)
				}
				done := s.pop()
				if typ == 'Z' && done.req != nil && done.req.sqlQ != nil {
					s.sqlFinish(done.req.sqlQ)
				}
				if typ == 'Z' {
					now := time.Now()
					finished = done.req
					if finished != nil {
						finished.end = now
					}
					release = s.requestDone(sc, frame[5], now)
					releasedAt = now
					drained = s.outstanding == 0
				}
				post = s.takeSynth(post)
			}
		}
		s.mu.Unlock()
		if commit {
			s.commitWrites()
		}
		if (typ == 'C' && !hidden) || typ == 'I' || typ == 'E' || typ == 's' {
			v.rsRows = 0
			v.stmtIdx++
		}

		if len(pre) > 0 {
			s.cw.Write(pre)
		}
		if relay {
			s.writeRelayed(frame)
		}
		if len(post) > 0 {
			s.cw.Write(post)
		}
		if typ != 'Z' {
			if inline && (typ == 'G' || typ == 'W') {
				// COPY FROM STDIN: the client's goroutine must go back to
				// reading the client while the server's goroutine relays.
				unlock()
				return pumpHandover, v
			}
			continue
		}
		if finished != nil && s.mode == "transaction" {
			s.mu.Lock()
			if len(finished.stateDecs) > 0 || len(s.pendingSets) > 0 || (finished.decision != nil && hasState(finished.decision)) {
				decs := finished.stateDecs
				if finished.decision != nil {
					decs = append(decs, finished.decision)
				}
				s.noteStateChanges(sc, decs, v.sqlstate != "", frame[5])
			}
			s.mu.Unlock()
			finished.stateDecs = finished.stateDecs[:0]
		}
		if finished != nil {
			finishFill(finished, frame[5])
			for _, f := range finished.fills {
				f.finish(frame[5])
			}
			finished.fills = finished.fills[:0]
			finished.rows, finished.sqlstate = v.rows, v.sqlstate
		}
		single := v.stmtIdx <= 1
		v = relayVars{}
		if release {
			// The server goes back before the reply is flushed: a waiting
			// client gets it without waiting for this client's socket (or
			// for this thread, should the kernel switch to the process
			// the write wakes). The request is accounted before the flush,
			// so a client that asks for stats after its reply finds it.
			if s.pool.checkinAt(sc, releasedAt) {
				// Clients wait for servers: others have work to do
				// before this client can have sent its next message
				// (see loop).
				if inline { // the loop's goroutine: no other writes it
					s.contended = true
				}
				if single {
					// The waiter is next on this thread: let it run
					// now, so the server gets its statement before
					// this client's flush and bookkeeping rather than
					// after. Only after a one-statement request: after
					// a pipeline, the delayed flush cost more CPU than
					// the early start bought (docs/transaction-pooling.md,
					// "The relay path").
					runtime.Gosched()
				}
			}
			s.complete(finished)
			unlock()
			return pumpReleased, v
		}
		s.complete(finished)
		if inline && drained {
			unlock()
			return pumpHeld, v
		}
	}
}

// complete runs the completion stages of a finished request (nil: none)
// and recycles it.
func (s *session) complete(r *request) {
	if r == nil {
		return
	}
	if !r.internal {
		for _, c := range completionStages {
			c.run(s, r)
		}
	}
	s.recycle(r)
}

// writeRelayed copies a server frame to the client; the caller holds wmu.
func (s *session) writeRelayed(frame []byte) {
	if _, err := s.cw.Write(frame); err != nil {
		// The client is gone; keep draining so finish can decide about
		// the server with the stream in a known state.
		s.conn.Close()
	}
	bytesOut.Add(float64(len(frame)))
}

// takeSynth appends Sluice's own replies now at the head of the plan and
// pops them; the caller holds s.mu.
func (s *session) takeSynth(dst []byte) []byte {
	for e := s.head(); e != nil && e.act == actSynth; e = s.head() {
		dst = append(dst, e.synth, 0, 0, 0, 4)
		s.pop()
	}
	return dst
}

// requestDone decides, at a request's ReadyForQuery, whether the server
// goes back to the pool (transaction mode, idle, nothing outstanding).
// The caller holds s.mu.
func (s *session) requestDone(sc *serverConn, status byte, now time.Time) bool {
	if status == 'I' {
		s.pool.totalXacts.Add(1)
	}
	if s.outstanding > 0 || s.unsynced || s.server != sc {
		return false
	}
	s.setStateAt(clientIdle, now)
	if s.mode != "transaction" || status != 'I' || s.stopping || s.pinned || s.head() != nil {
		return false
	}
	s.server = nil
	return true
}

func (s *session) recycle(r *request) {
	s.mu.Lock()
	if len(s.free) < 16 {
		s.free = append(s.free, r)
	}
	s.mu.Unlock()
}

// noteParameter tracks a ParameterStatus: the server's value always, and
// the client's wanted value for settings that travel with the client.
func (s *session) noteParameter(sc *serverConn, b []byte, internal bool) {
	k, v := sc.noteParameter(b)
	if !carriedSetting[k] {
		return
	}
	s.mu.Lock()
	if _, ok := s.wanted[k]; ok || !internal {
		s.wanted[k] = v
		sc.applied[k] = v
		s.wantedChanged()
		sc.appliedChanged()
	}
	s.mu.Unlock()
}

// pumpStopped handles the end of relaying other than a release: either
// finish asked for it (read deadline) or the server failed.
func (s *session) pumpStopped(sc *serverConn, err error) {
	s.mu.Lock()
	stopping := s.stopping
	if !stopping && s.failure == nil {
		s.failure = err
	}
	s.mu.Unlock()
	if stopping && isTimeout(err) {
		return
	}
	if stopping {
		return
	}
	s.log.Warn().Err(err).Uint32("server_pid", sc.pid).Msg("server connection lost")
	s.wmu.Lock()
	s.cw.Write(appendErrorResponse(nil, fatal(codeConnectionFailure, "sluice: server closed the connection unexpectedly")))
	s.cw.Flush()
	s.wmu.Unlock()
	s.conn.Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// appendReady encodes ReadyForQuery.
func appendReady(dst []byte, status byte) []byte {
	return append(dst, 'Z', 0, 0, 0, 5, status)
}

// appendParameterStatus encodes ParameterStatus.
func appendParameterStatus(dst []byte, k, v string) []byte {
	start := len(dst)
	dst = append(dst, 'S', 0, 0, 0, 0)
	dst = append(dst, k...)
	dst = append(dst, 0)
	dst = append(dst, v...)
	dst = append(dst, 0)
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-1))
	return dst
}

// appendTruncationNotice adds the NoticeResponse that tells a client its
// result was cut by a row limit: the result set just completed has exactly
// the limit's rows.
func appendTruncationNotice(dst []byte, e *entry, stmtIdx int, rows int64) []byte {
	var d *rewrite.Decision
	limit := 0
	switch {
	case e.op == 'E' && e.limit != nil:
		d, limit = e.limit, e.limit.MaxRows
	case e.op == 'Q' && e.req != nil && e.req.decision != nil:
		d = e.req.decision
		if len(d.Limits) > stmtIdx {
			limit = d.Limits[stmtIdx]
		} else if len(d.Limits) == 0 {
			limit = d.MaxRows
		}
	}
	if limit <= 0 || rows != int64(limit) || d.Notice == "" {
		return dst
	}
	truncatedTotal.Inc()
	return appendNotice(dst, "01000", d.Notice)
}
