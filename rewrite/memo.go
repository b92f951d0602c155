package rewrite

import (
	"sync"
	"sync/atomic"
)

// memoSlot caches, per analysis, the rule work of the current Engine: which
// rules' statement predicates hold (regexps evaluated once per text and
// engine) and the last Decision built, reused while the same rules match.
type memoSlot struct{ p atomic.Pointer[ruleMemo] }

type ruleMemo struct {
	eng *Engine
	// cand[i] lists, in rule order, the rules whose statement predicates
	// hold for statement i.
	cand [][]int32
	any  bool
	// slots hold the last few Decisions built, so a handful of sessions
	// taking turns on one text do not rebuild each other's Decision.
	slots [memoSlots]atomic.Pointer[decisionMemo]
	next  atomic.Uint32
}

const memoSlots = 4

func (m *ruleMemo) bySession(s *Session) *decisionMemo {
	for i := range m.slots {
		if dm := m.slots[i].Load(); dm != nil && dm.session == *s {
			return dm
		}
	}
	return nil
}

func (m *ruleMemo) byMatched(matched []int32) *decisionMemo {
	for i := range m.slots {
		if dm := m.slots[i].Load(); dm != nil && equalInt32(dm.matched, matched) {
			return dm
		}
	}
	return nil
}

func (m *ruleMemo) store(dm *decisionMemo) {
	m.slots[m.next.Add(1)%memoSlots].Store(dm)
}

// decisionMemo is a Decision with the exact matched rule list that produced
// it (flattened: statement index, then rule indexes, -1 between
// statements).
type decisionMemo struct {
	session Session
	matched []int32
	d       *Decision
}

// maxMemoMatches bounds the matched list kept on the stack; above it the
// Decision is rebuilt each time (correct, just slower).
const maxMemoMatches = 64

func (e *Engine) memoFor(an *analysis) *ruleMemo {
	if m := an.memo.p.Load(); m != nil && m.eng == e {
		return m
	}
	if sh := an.shape; sh != nil {
		cm := sh.cand.Load()
		if cm == nil || cm.eng != e {
			full := e.candidates(an)
			cm = &candMemo{eng: e, cand: full.cand, any: full.any}
			sh.cand.Store(cm)
		}
		m := &ruleMemo{eng: e, cand: cm.cand, any: cm.any}
		an.memo.p.Store(m)
		return m
	}
	m := e.candidates(an)
	an.memo.p.Store(m)
	return m
}

// candidates evaluates every rule's statement predicates on an.
func (e *Engine) candidates(an *analysis) *ruleMemo {
	m := &ruleMemo{eng: e, cand: make([][]int32, len(an.stmts))}
	for i, si := range an.stmts {
		for j, r := range e.rules {
			if r.matchStatement(si.st) {
				m.cand[i] = append(m.cand[i], int32(j))
				m.any = true
			}
		}
	}
	if an.parseError {
		// A text that did not parse still meets rules that only look at
		// the session (block a user, log an application).
		m.cand = [][]int32{nil}
		for j, r := range e.rules {
			if !r.stmtPred {
				m.cand[0] = append(m.cand[0], int32(j))
				m.any = true
			}
		}
	}
	return m
}

// sessionBits caches, per Engine, which rules' session predicates hold for
// a Session (bit j for rules[j]). Sessions are few (database, user,
// application and address repeat across connections), so this turns the
// per-call session checks of every candidate rule into bit tests. The map
// is bounded: past maxSessionEntries new sessions are evaluated each time.
type sessionBits struct {
	m sync.Map // Session -> []uint64
	n atomic.Int64
}

const maxSessionEntries = 10000

func (e *Engine) sessionMatch(s *Session) []uint64 {
	if v, ok := e.sess.m.Load(*s); ok {
		return v.([]uint64)
	}
	bits := make([]uint64, (len(e.rules)+63)/64)
	for j, r := range e.rules {
		if r.matchSession(s) {
			bits[j/64] |= 1 << (j % 64)
		}
	}
	if e.sess.n.Load() < maxSessionEntries {
		if _, loaded := e.sess.m.LoadOrStore(*s, bits); !loaded {
			e.sess.n.Add(1)
		}
	}
	return bits
}
