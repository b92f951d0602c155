package rewrite

import "sync/atomic"

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
	last atomic.Pointer[decisionMemo]
}

// decisionMemo is a Decision with the exact matched rule list that produced
// it (flattened: statement index, then rule indexes, -1 between
// statements).
type decisionMemo struct {
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
	an.memo.p.Store(m)
	return m
}
