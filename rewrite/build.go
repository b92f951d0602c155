package rewrite

import "strings"

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
	an := e.analysisFor(text, nil)
	if an.parseError || len(an.stmts) != 1 {
		return nil, false
	}
	return an.stmts[0], true
}
