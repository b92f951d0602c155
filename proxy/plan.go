package proxy

import "github.com/sluice-proxy/sluice/rewrite"

// The plan is the ordered list of replies a client is owed: one entry per
// message that PostgreSQL answers (Parse, Bind, Describe, Execute, Close,
// Sync, Query, FunctionCall). The relay walks it to know which server
// message answers which client message, so that Sluice can answer some
// messages itself (a Parse of a statement the server already has), hide
// replies to messages it added (a Parse re-preparing a statement on a new
// server), and skip to Sync after an error exactly as PostgreSQL does.

// entry actions.
const (
	actForward byte = iota // relay the server's reply
	actSwallow             // Sluice sent this message itself: drop the reply (errors still go through)
	actSynth               // not sent: Sluice answers with synth
)

type entry struct {
	op    byte // the client message type answered
	act   byte
	synth byte      // reply type Sluice sends for actSynth ('1' ParseComplete, '3' CloseComplete)
	req   *request  // for Sync, Query, FunctionCall
	stmt  *prepared // for Parse (or Sluice's SQL PREPARE): undone if it fails or is skipped
	sc    *serverConn
	limit *rewrite.Decision // for Execute: the row limit that may truncate it
	fill  *fillState        // for Describe/Execute of a unit being cached
	// For Bind/Describe/Close of a renamed statement: the server-side
	// name and the client's, to undo a skipped Close and to word errors
	// with the client's name.
	global, name string
	// For the Bind that may be retried after a stale plan (retry.go).
	retry uint32
}

// pushFront queues es before the head, for replies the server will send
// first; the caller holds s.mu.
func (s *session) pushFront(es ...entry) {
	if s.planHead >= len(es) {
		s.planHead -= len(es)
		copy(s.plan[s.planHead:], es)
	} else {
		rest := s.plan[s.planHead:]
		plan := make([]entry, 0, len(es)+len(rest)+8)
		s.plan = append(append(plan, es...), rest...)
		s.planHead = 0
	}
	for _, e := range es {
		if e.op == 'S' || e.op == 'Q' || e.op == 'F' {
			s.outstanding++
		}
	}
}

// completes reports whether a reply of type typ ends entry e's answer.
func (e *entry) completes(typ byte) bool {
	switch e.op {
	case 'Q', 'F', 'S':
		return typ == 'Z'
	case 'P':
		return typ == '1'
	case 'B':
		return typ == '2'
	case 'C':
		return typ == '3'
	case 'D':
		return typ == 'T' || typ == 'n'
	case 'E':
		return typ == 'C' || typ == 'I' || typ == 's'
	}
	return false
}

// push queues e; the caller holds s.mu.
func (s *session) push(e entry) {
	s.plan = append(s.plan, e)
	if e.op == 'S' || e.op == 'Q' || e.op == 'F' {
		s.outstanding++
	}
}

// pop removes the head entry; the caller holds s.mu.
func (s *session) pop() entry {
	e := s.plan[s.planHead]
	s.plan[s.planHead] = entry{}
	s.planHead++
	if s.planHead == len(s.plan) {
		s.plan = s.plan[:0]
		s.planHead = 0
	}
	if e.op == 'S' || e.op == 'Q' || e.op == 'F' {
		s.outstanding--
	}
	return e
}

func (s *session) head() *entry {
	if s.planHead == len(s.plan) {
		return nil
	}
	return &s.plan[s.planHead]
}

// skipAfterError drops the entries PostgreSQL skips after an error in an
// extended-protocol batch: everything up to the next Sync. Statements whose
// Parse was skipped were never created. The caller holds s.mu.
func (s *session) skipAfterError() {
	for e := s.head(); e != nil && e.op != 'S' && e.op != 'Q' && e.op != 'F'; e = s.head() {
		s.undo(e)
		s.pop()
	}
}

// undo forgets the statement of a Parse that did not succeed, and
// remembers a statement whose Close (to make room) was skipped.
func (s *session) undo(e *entry) {
	if e.op == 'C' && e.act == actSwallow && e.global != "" && e.sc != nil {
		e.sc.add(e.global)
		return
	}
	if (e.op == 'P' || e.op == 'E') && e.stmt != nil { // 'E': an SQL PREPARE of ensure
		if e.act != actSynth && e.sc != nil {
			e.sc.forget(e.stmt.global)
		}
		if e.act != actSwallow {
			if cur, ok := s.stmts[e.stmt.name]; ok && cur == e.stmt {
				delete(s.stmts, e.stmt.name)
			}
		}
	}
}
