package rewrite

import (
	"sync"
	"sync/atomic"

	"github.com/maypok86/otter/v2"
)

// shape is the analysis shared by all texts that differ only in literal
// values. It is created from the first such text's full analysis, and only
// marked shareable when nothing in that analysis depends on a literal's
// value (see newShape); otherwise every text of the shape is analyzed on
// its own.
type shape struct {
	ok bool
	st Statement
	// limit is the plan with positions left to instantiate: limitAppend
	// goes at the end of the statement, limitParam at lexer token
	// paramTok.
	limit    limitKind
	paramTok int
	maxParam int
	// cand caches the rule candidates of the current Engine for the
	// shape: statement predicates only read fields that are the same for
	// every text of the shape.
	cand atomic.Pointer[candMemo]
}

type candMemo struct {
	eng  *Engine
	cand [][]int32
	any  bool
}

// shareableKinds are the statements whose analysis is independent of
// literal values: relations, functions and kind come from identifiers and
// keywords. Utility statements keep constants in their facts (SET values,
// set_config names) and pg_query does not normalize all their constants.
var shareableKinds = map[string]bool{"select": true, "values": true, "insert": true, "update": true, "delete": true, "merge": true}

// newShape decides whether an's analysis can stand for every text with the
// same shape key. text and toks are the text an was made from and its
// lexer tokens.
func newShape(an *analysis, toks []lexTok) *shape {
	sh := &shape{}
	if an.parseError || len(an.stmts) != 1 || an.hintA >= 0 || an.comment.Set {
		return sh
	}
	si := an.stmts[0]
	st := si.st
	if !shareableKinds[st.Kind] || len(st.SessionState) > 0 || st.TempObjects {
		return sh
	}
	a, b, ok := lexSpan(toks)
	if !ok || a != si.a || b != si.b {
		return sh
	}
	switch si.limit.kind {
	case limitNone, limitAppend:
	case limitParam:
		at := si.a + si.limit.a
		sh.paramTok = -1
		for j, t := range toks {
			if int(t.start) == at && t.kind == lexParam {
				sh.paramTok = j
			}
		}
		if sh.paramTok < 0 {
			return sh
		}
	default:
		// A constant limit decides whether the limit is lowered, and a
		// deparsed template carries the literals: per text.
		return sh
	}
	// Every literal must be one pg_query normalized away, so Normalized
	// (and the fingerprint, which ignores constants) is the same for all
	// texts of the shape.
	cm, err := buildConstMap(st.Text, st.Normalized, si.maxParam)
	if err != nil {
		return sh
	}
	for _, t := range toks {
		if t.kind != lexNumber && t.kind != lexString {
			continue
		}
		ls, le := int(t.start)-si.a, int(t.end)-si.a
		covered := false
		for _, sp := range cm.spans {
			if sp[0] <= ls && le <= sp[1] {
				covered = true
				break
			}
		}
		if !covered {
			return sh
		}
	}
	sh.ok = true
	sh.st = *st
	sh.st.Text = ""
	sh.limit = si.limit.kind
	sh.maxParam = si.maxParam
	return sh
}

// instance holds everything one instantiated text needs in one
// allocation.
type instance struct {
	an         analysis
	si         stmtInfo
	st         Statement
	stmts      [1]*stmtInfo
	statements [1]*Statement
	plain      Decision
}

// instantiate builds the analysis of text from the shape: the Statement is
// the shape's with this text's own Text, and the limit plan points into it.
func (sh *shape) instantiate(text string, toks []lexTok) *analysis {
	a, b, ok := lexSpan(toks)
	if !ok {
		return nil
	}
	in := &instance{st: sh.st}
	in.st.Text = text[a:b]
	in.st.Pos = a
	in.si = stmtInfo{st: &in.st, a: a, b: b, maxParam: sh.maxParam}
	switch sh.limit {
	case limitAppend:
		in.si.limit = limitPlan{kind: limitAppend, a: len(in.st.Text)}
	case limitParam:
		if sh.paramTok >= len(toks) {
			return nil
		}
		t := toks[sh.paramTok]
		in.si.limit = limitPlan{kind: limitParam, a: int(t.start) - a, b: int(t.end) - a}
	}
	in.stmts[0] = &in.si
	in.statements[0] = &in.st
	in.an = analysis{text: text, stmts: in.stmts[:], statements: in.statements[:], hintA: -1, shape: sh, derived: true}
	in.plain = Decision{SQL: text, Statements: in.an.statements}
	in.an.plain = &in.plain
	return &in.an
}

// shapeCache maps shape keys to shapes, bounded like the analysis cache.
type shapeCache struct {
	c *otter.Cache[string, *shape]
}

func newShapeCache(maxBytes int64) *shapeCache {
	if maxBytes <= 0 {
		return nil
	}
	c, err := otter.New(&otter.Options[string, *shape]{
		MaximumWeight: uint64(maxBytes),
		Weigher:       func(k string, s *shape) uint32 { return uint32(2*len(k)+len(s.st.Normalized)) + 512 },
	})
	if err != nil {
		return nil
	}
	return &shapeCache{c: c}
}

// lexBuf holds the lexer's reusable buffers.
type lexBuf struct {
	toks []lexTok
	key  []byte
}

var lexPool = sync.Pool{New: func() any { return &lexBuf{toks: make([]lexTok, 0, 64), key: make([]byte, 0, 256)} }}
