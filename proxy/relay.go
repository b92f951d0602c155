package proxy

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
)

// pump relays server replies to the client while sc is linked: frames are
// copied into the client's buffered writer as they come and flushed when
// the server's input runs dry, so one flush covers a whole batch. At each
// ReadyForQuery it completes the oldest request and, in transaction mode,
// gives the server back when nothing of the client's is outstanding.
func (s *session) pump(sc *serverConn, done chan struct{}) {
	defer close(done)
	locked := false
	var cur *request
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
			s.pumpStopped(sc, err)
			return
		}
		if !locked {
			s.wmu.Lock()
			locked = true
		}
		if cur == nil {
			cur = s.headRequest()
		}
		relay := cur == nil || !cur.internal
		switch typ {
		case 'D':
			if cur != nil {
				cur.rows++
			}
		case 'E':
			if cur != nil && cur.sqlstate == "" {
				cur.sqlstate = errorCode(body(frame))
			}
			if cur != nil && cur.internal {
				relay = true // the client must learn its settings failed
			}
		case 'S':
			s.noteParameter(sc, body(frame), cur != nil && cur.internal)
		case 'Z':
			if len(frame) < 6 {
				unlock()
				s.pumpStopped(sc, errors.New("malformed ReadyForQuery"))
				return
			}
			sc.txStatus.Store(uint32(frame[5]))
		}
		if relay {
			if _, err := s.cw.Write(frame); err != nil {
				// The client is gone; keep draining so finish can decide
				// about the server with the stream in a known state.
				s.conn.Close()
			}
			bytesOut.Add(float64(len(frame)))
		}
		if typ != 'Z' {
			continue
		}
		release := s.requestDone(sc, frame[5])
		if cur != nil {
			if !cur.internal {
				for _, c := range completionStages {
					c.run(s, cur)
				}
			}
			s.recycle(cur)
			cur = nil
		}
		if release {
			unlock()
			s.pool.checkin(sc)
			return
		}
	}
}

// headRequest is the oldest request still waiting for its ReadyForQuery.
func (s *session) headRequest() *request {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		return nil
	}
	return s.reqs[0]
}

// requestDone pops the finished request and decides whether the server
// goes back to the pool (transaction mode, idle, nothing outstanding).
func (s *session) requestDone(sc *serverConn, status byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) > 0 {
		s.reqs[0] = nil
		s.reqs = s.reqs[1:]
		if len(s.reqs) == 0 {
			s.reqs = s.reqs[:0:cap(s.reqs)]
		}
	}
	if s.outstanding > 0 {
		s.outstanding--
	}
	if status == 'I' {
		s.pool.totalXacts.Add(1)
	}
	if s.outstanding > 0 || s.unsynced || s.server != sc {
		return false
	}
	if s.mode != "transaction" || status != 'I' || s.stopping {
		s.setState(clientIdle)
		return false
	}
	s.server = nil
	s.setState(clientIdle)
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
