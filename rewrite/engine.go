package rewrite

import (
	"strings"
	"sync/atomic"
)

// Engine applies one configuration's rules. It is immutable once built and
// safe for concurrent use; a reload builds a new Engine (Reload keeps the
// analysis cache, so nothing is parsed again).
type Engine struct {
	rules        []*rule
	maxRows      int
	globalNotice string
	notice       bool
	maxStmt      int
	cacheBytes   int64
	cache        *analysisCache
	shapes       *shapeCache
	sess         sessionBits
	admit        atomic.Uint64
}

// NewEngine validates cfg and compiles its rules. An invalid configuration
// is returned as an error and no Engine: the caller keeps the old one.
func NewEngine(cfg Config) (*Engine, error) {
	return newEngine(cfg, nil, nil)
}

// Reload builds an Engine for cfg that shares e's analysis cache when its
// size setting is unchanged.
func (e *Engine) Reload(cfg Config) (*Engine, error) {
	var c *analysisCache
	var sc *shapeCache
	if e != nil && e.cacheBytes == cfg.Engine.AnalysisCacheBytes {
		c, sc = e.cache, e.shapes
	}
	return newEngine(cfg, c, sc)
}

func newEngine(cfg Config, cache *analysisCache, shapes *shapeCache) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{
		maxRows:    cfg.MaxRows,
		notice:     cfg.Engine.TruncationNotice,
		maxStmt:    cfg.Engine.MaxStatementBytes,
		cacheBytes: cfg.Engine.AnalysisCacheBytes,
		cache:      cache,
		shapes:     shapes,
	}
	if e.cache == nil {
		e.cache = newAnalysisCache(cfg.Engine.AnalysisCacheBytes)
		// Shapes are small and few: a quarter of the budget on top.
		e.shapes = newShapeCache(cfg.Engine.AnalysisCacheBytes / 4)
	}
	for i := range cfg.Rules {
		r, err := compileRule(i, &cfg.Rules[i], cfg.Engine)
		if err != nil {
			return nil, err
		}
		e.rules = append(e.rules, r)
	}
	if cfg.MaxRows > 0 {
		e.globalNotice = noticeText(cfg.Engine.NoticeTemplate, "max_rows", cfg.MaxRows)
	}
	if !e.notice {
		e.globalNotice = ""
		for _, r := range e.rules {
			r.notice = ""
		}
	}
	return e, nil
}

// Process analyzes sql (from the cache when seen before) and applies the
// rules for session s. It is called for every simple Query text and every
// Parse text. The returned Decision is shared: do not modify it.
func (e *Engine) Process(sql string, s Session) *Decision {
	an := e.analysisFor(sql)
	if an.parseError {
		metricParseErrors.Inc()
	}
	if len(e.rules) == 0 && e.maxRows == 0 {
		return an.plain
	}
	m := e.memoFor(an)
	if !m.any && e.maxRows == 0 {
		return an.plain
	}
	if last := m.bySession(&s); last != nil {
		// Same text, same engine, same session facts: same Decision.
		for _, c := range last.d.counters {
			c.c.Inc()
		}
		return last.d
	}
	bits := e.sessionMatch(&s)
	var buf [maxMemoMatches]int32
	matched := buf[:0]
	overflow := false
	for _, cand := range m.cand {
		for _, j := range cand {
			if bits[j/64]&(1<<(j%64)) == 0 {
				continue
			}
			if len(matched) < maxMemoMatches-len(m.cand) {
				matched = append(matched, j)
			} else {
				overflow = true
			}
			if !e.rules[j].cont {
				break
			}
		}
		if len(matched) < maxMemoMatches {
			matched = append(matched, -1)
		}
	}
	if !overflow && e.maxRows == 0 && noneMatched(matched) {
		// Candidates by statement, but none for this session.
		m.store(&decisionMemo{session: s, d: an.plain, matched: noMatch(len(m.cand))})
		return an.plain
	}
	var d *Decision
	if same := m.byMatched(matched); same != nil && !overflow {
		d = same.d
		m.store(&decisionMemo{session: s, matched: same.matched, d: d})
	} else {
		d = e.build(an, m, &s)
		if !overflow {
			m.store(&decisionMemo{session: s, matched: append([]int32(nil), matched...), d: d})
		}
	}
	for _, c := range d.counters {
		c.c.Inc()
	}
	return d
}

// noMatch is the matched list of n statements with no rule.
func noMatch(n int) []int32 {
	if n < len(noMatchLists) {
		return noMatchLists[n]
	}
	l := make([]int32, n)
	for i := range l {
		l[i] = -1
	}
	return l
}

var noMatchLists = func() [][]int32 {
	out := make([][]int32, 16)
	for n := range out {
		out[n] = make([]int32, n)
		for i := range out[n] {
			out[n][i] = -1
		}
	}
	return out
}()

func noneMatched(matched []int32) bool {
	for _, j := range matched {
		if j >= 0 {
			return false
		}
	}
	return true
}

func equalInt32(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Analyze returns the analysis of sql without applying rules, for callers
// (monitor, result cache) that need only the facts.
func (e *Engine) Analyze(sql string) []*Statement {
	return e.analysisFor(sql).statements
}

// analysisFor returns the cached analysis of sql, analyzing it on a miss.
func (e *Engine) analysisFor(sql string) *analysis {
	if len(sql) > e.maxStmt {
		metricSkipped.Inc()
		an := &analysis{text: sql, hintA: -1}
		an.setParseError("not analyzed: text longer than rewrite.max_statement_bytes")
		return an
	}
	if an, ok := e.cache.get(sql); ok {
		metricCacheHits.Inc()
		return an
	}
	metricCacheMisses.Inc()
	an := e.analyzeNew(sql)
	if an.derived && e.admit.Add(1)%shapeAdmitEvery != 0 {
		// Texts served from a shape are cheap to rebuild and mostly
		// unique (a new literal each time): caching each would make
		// every one pay a cache insert and an eviction. A text that
		// repeats is admitted after a few sightings.
		return an
	}
	an = e.cache.put(sql, an)
	metricCacheBytes.Set(float64(e.cache.size()))
	return an
}

// shapeAdmitEvery: one shape-derived analysis in this many is put in the
// exact-text cache.
const shapeAdmitEvery = 8

// analyzeNew analyzes a text not in the exact cache: from its shape when
// a text differing only in literals was analyzed before, else with
// pg_query.
func (e *Engine) analyzeNew(sql string) *analysis {
	if e.shapes == nil {
		return analyze(sql)
	}
	lb := lexPool.Get().(*lexBuf)
	defer lexPool.Put(lb)
	toks, key, ok := lexShape(sql, lb.toks, lb.key)
	lb.toks, lb.key = toks, key
	if !ok {
		return analyze(sql)
	}
	k := string(key)
	if sh, hit := e.shapes.c.GetIfPresent(k); hit {
		if sh.ok {
			if an := sh.instantiate(sql, toks); an != nil {
				metricShapeHits.Inc()
				return an
			}
		}
		return analyze(sql)
	}
	an := analyze(sql)
	sh := newShape(an, toks)
	e.shapes.c.SetIfAbsent(k, sh)
	if sh.ok {
		an.shape = sh
	}
	return an
}

// actions are what the matched rules ask for one statement; the first rule
// to set an action wins, hints accumulate.
type actions struct {
	maxRows    int
	limitRule  string
	notice     string
	hasMaxRows bool
	hints      []string
	hintRules  []string
	replace    *rule
	block      *Block
	cache      *CacheAction
	route      string
	log        bool
}

// build makes the Decision for an under the rules the session matches. It
// runs once per (text, matched rule set) thanks to the memo.
func (e *Engine) build(an *analysis, m *ruleMemo, s *Session) *Decision {
	d := &Decision{SQL: an.text, Statements: an.statements, Cache: an.comment}
	seen := map[string]bool{}
	count := func(kind map[string]bool, name string, vec func(string) counterInc) {
		if !kind[name] {
			kind[name] = true
			d.counters = append(d.counters, vec(name))
		}
	}
	matchedC, rewriteC, blockC := map[string]bool{}, map[string]bool{}, map[string]bool{}
	acts := make([]actions, len(m.cand))
	for i, cand := range m.cand {
		a := &acts[i]
		for _, j := range cand {
			r := e.rules[j]
			if !r.matchSession(s) {
				continue
			}
			if !seen[r.name] {
				seen[r.name] = true
				d.Rules = append(d.Rules, r.name)
			}
			count(matchedC, r.name, func(n string) counterInc { return counterInc{metricMatches.WithLabelValues(n)} })
			if r.hasMaxRows && !a.hasMaxRows {
				a.hasMaxRows, a.maxRows, a.limitRule, a.notice = true, r.maxRows, r.name, r.notice
			}
			if r.hint != "" {
				a.hints = append(a.hints, r.hint)
				a.hintRules = append(a.hintRules, r.name)
			}
			if (r.replaceRe != nil || r.replaceSQL != "") && a.replace == nil {
				a.replace = r
			}
			if r.block != nil && a.block == nil {
				a.block = r.block
			}
			if r.cache != nil && a.cache == nil {
				a.cache = r.cache
			}
			if r.route != "" && a.route == "" {
				a.route = r.route
			}
			a.log = a.log || r.log
			if !r.cont {
				break
			}
		}
		if a.block != nil && d.Block == nil {
			d.Block = a.block
		}
		if a.cache != nil {
			d.Cache.Set = true
			d.Cache.Off = d.Cache.Off || a.cache.Off
			if a.cache.TTL > 0 {
				d.Cache.TTL = a.cache.TTL
			}
		}
		if a.route != "" && d.Route == "" {
			d.Route = a.route
		}
		d.Log = d.Log || a.log
	}
	if d.Block != nil {
		// Postgres runs a multi-statement Query as one implicit
		// transaction, so an error in any statement means none of it
		// happens: blocking one blocks the whole text.
		count(blockC, d.Block.Rule, func(n string) counterInc { return counterInc{metricBlocks.WithLabelValues(n)} })
		return d
	}
	if an.parseError {
		return d
	}

	var out strings.Builder
	last := 0
	var hints []string
	var stmts []*Statement
	for i, si := range an.stmts {
		a := &acts[i]
		text, st, plan := si.st.Text, si.st, &si.limit
		if a.replace != nil {
			if nt, ok := e.applyReplace(si, a.replace); ok {
				text, st, plan = nt.st.Text, nt.st, &nt.limit
				if stmts == nil {
					stmts = append([]*Statement(nil), an.statements...)
				}
				stmts[i] = st
				count(rewriteC, a.replace.name, func(n string) counterInc { return counterInc{metricRewrites.WithLabelValues(n)} })
			} else {
				metricReplaceFailures.WithLabelValues(a.replace.name).Inc()
			}
		}
		n, rule, notice := e.maxRows, "max_rows", e.globalNotice
		if a.hasMaxRows {
			n, rule, notice = a.maxRows, a.limitRule, a.notice
		}
		if n > 0 {
			if lt, changed := plan.apply(text, n); changed {
				text = lt
				if d.Limits == nil {
					d.Limits = make([]int, len(an.stmts))
				}
				d.Limits[i] = n
				if d.MaxRows == 0 {
					d.MaxRows, d.LimitRule, d.Notice = n, rule, notice
				}
				count(rewriteC, rule, func(n string) counterInc { return counterInc{metricRewrites.WithLabelValues(n)} })
			}
		}
		if len(a.hints) > 0 {
			hints = append(hints, a.hints...)
			for _, hr := range a.hintRules {
				count(rewriteC, hr, func(n string) counterInc { return counterInc{metricRewrites.WithLabelValues(n)} })
			}
		}
		out.WriteString(an.text[last:si.a])
		out.WriteString(text)
		last = si.b
	}
	out.WriteString(an.text[last:])
	sql := out.String()
	if len(hints) > 0 {
		sql = withHint(sql, an.hintA, an.hintB, strings.Join(dedupe(hints), " "))
	}
	if stmts != nil {
		d.Statements = stmts
	}
	if sql != an.text {
		d.SQL, d.Rewritten = sql, true
	}
	return d
}

func dedupe(list []string) []string {
	out := list[:0:0]
	for _, s := range list {
		if !containsStr(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// applyReplace runs a replace or replace_with rule on one statement and
// returns the analysis of the replacement, which must be exactly one
// statement that parses and keeps every client parameter.
func (e *Engine) applyReplace(si *stmtInfo, r *rule) (*stmtInfo, bool) {
	var text string
	if r.replaceRe != nil {
		t, ok := replaceNormalized(si, r.replaceRe, r.replaceWith)
		if !ok {
			return nil, false
		}
		text = t
	} else {
		for k := range paramNumbers(si.st.Text) {
			if !r.replaceArgs[k] {
				return nil, false
			}
		}
		text = r.replaceSQL
	}
	an := e.analysisFor(text)
	if an.parseError || len(an.stmts) != 1 {
		return nil, false
	}
	return an.stmts[0], true
}
