package rewrite

import (
	"strings"
	"sync"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// analysis is the cached result for one exact text: everything Process needs
// so that a repeat does no parsing and, without rules, no allocation.
type analysis struct {
	text  string
	stmts []*stmtInfo
	// statements is the exported view handed out in Decisions.
	statements []*Statement
	// hintA/hintB bound a pg_hint_plan comment ("/*+ ... */") that is the
	// first token of the text; hintA < 0 when there is none.
	hintA, hintB int
	// comment holds /* sluice:cache ... */ and /* sluice:nocache */.
	comment    CacheDirective
	parseError bool
	// plain is the Decision when no rule and no default limit applies.
	plain *Decision
	memo  memoSlot
	// shape is set when this analysis stands for (or came from) a
	// shareable shape.
	shape *shape
	// derived marks an analysis instantiated from a shape.
	derived bool
}

// stmtInfo is one statement of an analysis with what only the engine needs.
type stmtInfo struct {
	st *Statement
	// a, b are the bounds of st.Text in analysis.text.
	a, b     int
	limit    limitPlan
	maxParam int
	// consts maps normalized placeholders to the original constant text,
	// built on first use by a replace rule.
	constsOnce sync.Once
	consts     *constMap
}

// analyze parses text once and derives every per-statement fact from that
// tree and one scan. It never fails: a text that does not parse yields one
// Statement with ParseError set.
func analyze(text string) *analysis {
	an := &analysis{text: text, hintA: -1}
	res, err := pg.Parse(text)
	if err != nil {
		an.setParseError(err.Error())
		return an
	}
	scan, err := pg.Scan(text)
	if err != nil {
		an.setParseError(err.Error())
		return an
	}
	toks := scan.Tokens
	an.comments(toks)
	for _, raw := range res.Stmts {
		si := analyzeStmt(text, raw, toks)
		if si == nil {
			continue
		}
		an.stmts = append(an.stmts, si)
		an.statements = append(an.statements, si.st)
	}
	an.plain = &Decision{SQL: text, Statements: an.statements, Cache: an.comment}
	return an
}

func (an *analysis) setParseError(msg string) {
	an.parseError = true
	st := &Statement{Kind: "other", ParseError: msg, Text: an.text}
	an.statements = []*Statement{st}
	an.plain = &Decision{SQL: an.text, Statements: an.statements}
}

// comments finds a leading hint comment and sluice cache directives.
func (an *analysis) comments(toks []*pg.ScanToken) {
	for i, t := range toks {
		if t.Token != pg.Token_C_COMMENT && t.Token != pg.Token_SQL_COMMENT {
			continue
		}
		c := an.text[t.Start:t.End]
		if i == 0 && strings.HasPrefix(c, "/*+") && t.Token == pg.Token_C_COMMENT {
			an.hintA, an.hintB = int(t.Start), int(t.End)
		}
		if t.Token == pg.Token_C_COMMENT {
			parseCacheComment(c, &an.comment)
		}
	}
}

func isTrivia(t *pg.ScanToken) bool {
	return t.Token == pg.Token_C_COMMENT || t.Token == pg.Token_SQL_COMMENT || t.Token == pg.Token_ASCII_59
}

// analyzeStmt analyzes one RawStmt. Statement bounds come from the scanner,
// not stmt_len, which includes trailing comments and whitespace: a LIMIT
// appended after a "-- comment" would be commented out.
func analyzeStmt(text string, raw *pg.RawStmt, all []*pg.ScanToken) *stmtInfo {
	lo := int(raw.StmtLocation)
	hi := len(text)
	if raw.StmtLen > 0 {
		hi = lo + int(raw.StmtLen)
	}
	var toks []*pg.ScanToken
	a, b := -1, -1
	for _, t := range all {
		if int(t.Start) < lo || int(t.End) > hi {
			continue
		}
		toks = append(toks, t)
		if isTrivia(t) {
			continue
		}
		if a < 0 {
			a = int(t.Start)
		}
		b = int(t.End)
	}
	if a < 0 || raw.Stmt == nil {
		return nil
	}
	st := &Statement{Text: text[a:b], Pos: a}
	w := &walker{ddl: classify(raw.Stmt, st)}
	w.node(raw.Stmt)
	st.Writes = w.writes
	for _, r := range w.reads {
		if containsRel(st.Writes, r) {
			continue
		}
		st.Reads = append(st.Reads, r)
	}
	st.Functions = w.functions
	st.Locking = w.locking
	st.SessionState = append(st.SessionState, w.state...)
	if w.temp && !st.TempObjects {
		st.TempObjects = true
	}
	st.ReadOnly = readOnly(raw.Stmt, st)
	if fp, err := pg.FingerprintToUInt64(st.Text); err == nil {
		st.Fingerprint = fp
	}
	if n, err := pg.Normalize(st.Text); err == nil {
		st.Normalized = n
	} else {
		st.Normalized = st.Text
	}
	si := &stmtInfo{st: st, a: a, b: b, maxParam: w.maxParam}
	si.limit = planLimit(raw.Stmt, raw, st.Text, a, toks)
	return si
}

func containsRel(list []Relation, r Relation) bool {
	for _, x := range list {
		if x == r {
			return true
		}
	}
	return false
}

// weight estimates the bytes an analysis holds, for the cache bound.
func (an *analysis) weight() uint32 {
	w := 2*len(an.text) + 512
	for _, s := range an.stmts {
		w += len(s.st.Normalized) + 256 + 32*(len(s.st.Reads)+len(s.st.Writes)+len(s.st.Functions)) + len(s.limit.prefix) + len(s.limit.suffix)
	}
	if w > 1<<31 {
		return 1 << 31
	}
	return uint32(w)
}
