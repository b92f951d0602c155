package rewrite

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
	door         *doorkeeper
}

// NewEngine validates cfg and compiles its rules. An invalid configuration
// is returned as an error and no Engine: the caller keeps the old one.
func NewEngine(cfg Config) (*Engine, error) {
	return newEngine(cfg, nil, nil, nil)
}

// Reload builds an Engine for cfg that shares e's analysis cache when its
// size setting is unchanged.
func (e *Engine) Reload(cfg Config) (*Engine, error) {
	var c *analysisCache
	var sc *shapeCache
	var door *doorkeeper
	if e != nil && e.cacheBytes == cfg.Engine.AnalysisCacheBytes {
		c, sc, door = e.cache, e.shapes, e.door
	}
	return newEngine(cfg, c, sc, door)
}

func newEngine(cfg Config, cache *analysisCache, shapes *shapeCache, door *doorkeeper) (*Engine, error) {
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
		door:       door,
	}
	if e.cache == nil {
		e.door = newDoorkeeper()
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
	return e.process(sql, s, nil)
}

// process is Process with the client's Recent (nil: none).
func (e *Engine) process(sql string, s Session, rec *Recent) *Decision {
	an := e.analysisFor(sql, rec)
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
	return e.analysisFor(sql, nil).statements
}

// analysisFor returns the cached analysis of sql, analyzing it on a miss.
func (e *Engine) analysisFor(sql string, rec *Recent) *analysis {
	if len(sql) > e.maxStmt {
		metricSkipped.Inc()
		an := &analysis{text: sql, hintA: -1}
		an.setParseError("not analyzed: text longer than rewrite.max_statement_bytes")
		return an
	}
	// A text the doorkeeper has not seen lately is not in the exact-text
	// cache if a shape serves it (admit.go): over the simple protocol
	// that is most texts, and skipping the lookup saves a miss in a large
	// table. Any other text is looked up before it is parsed.
	seen := e.door.admit(sql)
	if seen || e.shapes == nil {
		if an, ok := e.cache.get(sql); ok {
			metricCacheHits.Inc()
			return an
		}
	}
	an, cached := e.analyzeNew(sql, !seen && e.shapes != nil, rec)
	if cached {
		metricCacheHits.Inc()
		return an
	}
	metricCacheMisses.Inc()
	if an.derived && !seen {
		// Texts served from a shape are cheap to rebuild and mostly
		// unique (a new literal each time): only one that repeats is
		// cached.
		return an
	}
	an = e.cache.put(sql, an)
	metricCacheBytes.Set(float64(e.cache.size()))
	return an
}

// analyzeNew analyzes a text: from its shape when a text differing only in
// literals was analyzed before, else with pg_query. lookup says the
// exact-text cache was not consulted yet; it then is before a parse, and
// cached reports a hit there. rec, when not nil, is the client's Recent.
func (e *Engine) analyzeNew(sql string, lookup bool, rec *Recent) (an *analysis, cached bool) {
	if e.shapes == nil {
		return e.parse(sql, lookup)
	}
	lb := lexPool.Get().(*lexBuf)
	defer lexPool.Put(lb)
	toks, key, ok := lexShape(sql, lb.toks, lb.key)
	lb.toks, lb.key = toks, key
	if !ok {
		return e.parse(sql, lookup)
	}
	sh := rec.find(e, key)
	k := ""
	if sh == nil {
		k = string(key)
		var hit bool
		if sh, hit = e.shapes.c.GetIfPresent(k); hit {
			rec.remember(e, key, sh)
		}
	}
	if sh != nil {
		if sh.ok {
			if an := sh.instantiate(sql, toks); an != nil {
				metricShapeHits.Inc()
				return an, false
			}
		}
		return e.parse(sql, lookup)
	}
	if an, cached = e.parse(sql, lookup); cached {
		return an, true
	}
	sh = newShape(an, toks)
	e.shapes.c.SetIfAbsent(k, sh)
	rec.remember(e, key, sh)
	if sh.ok {
		an.shape = sh
	}
	return an, false
}

// parse returns the cached analysis of sql when lookup is set and the
// exact-text cache has it, else a new one from pg_query.
func (e *Engine) parse(sql string, lookup bool) (*analysis, bool) {
	if lookup {
		if an, ok := e.cache.get(sql); ok {
			return an, true
		}
	}
	return analyze(sql), false
}
