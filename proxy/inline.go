package proxy

import "time"

// The inline relay: a request that takes a server from the pool, with
// nothing more from the client waiting behind it, is relayed by the
// client's own goroutine instead of the server's relay goroutine. It
// writes the request, reads the reply and gives the server back, with no
// goroutine handoff on the way; on a raw socket the write happens inside
// the read's wait (rawConn.writeThenRead), which saves the read that would
// only say EAGAIN. That is the common shape of traffic (one statement,
// one reply) and where a pooler spends its CPU.
//
// While it relays, the client's goroutine is not reading the client, so
// the inline relay lasts at most inlineWait: a slower reply, a COPY FROM
// STDIN (the server waits for the client), or a request that leaves the
// server with the client (a transaction block, a pinned session) hand the
// server to its relay goroutine, which goes on where the inline relay
// stopped, and the client's goroutine goes back to reading the client (to
// see it leave, send COPY data, or pipeline more).
const inlineWait = 10 * time.Millisecond

// inlineOK reports whether the request being sent may be relayed inline:
// it is complete (r != nil), its server was just checked out, and the
// client has sent nothing more that is already waiting to be read.
func (s *session) inlineOK(r *request, fresh bool, out []byte) bool {
	return r != nil && fresh && len(out) > 0 && s.fr.buffered() == 0
}

// relayInline writes out to sc and relays the reply on the client's
// goroutine (see above).
func (s *session) relayInline(sc *serverConn, out []byte) error {
	// Moving a deadline costs a runtime timer update: keep the one set
	// for an earlier request while it is still at least half the wait
	// away (the wait is then between inlineWait/2 and inlineWait).
	if now := time.Now(); !sc.deadline || sc.deadlineAt.Sub(now) < inlineWait/2 {
		sc.deadlineAt = now.Add(inlineWait)
		sc.conn.SetReadDeadline(sc.deadlineAt)
		sc.deadline = true
	}
	if rc, ok := sc.conn.(*rawConn); ok && sc.fr.buffered() == 0 {
		rc.writeThenRead(out)
	} else if _, err := sc.conn.Write(out); err != nil {
		return s.serverLost(sc, err)
	}
	inlineRequests.Inc()
	end, v := s.pump(sc, relayVars{}, true)
	switch end {
	case pumpHeld:
		inlineHandoverHeld.Inc()
	case pumpHandover:
		inlineHandoverWait.Inc()
	default:
		return nil
	}
	sc.resume = v
	s.mu.Lock()
	sc.link(s)
	s.mu.Unlock()
	return nil
}
