package rewrite

import (
	"net/netip"
	"regexp"
)

// rule is a RuleConfig compiled for the hot path: regexps compiled,
// relation and name sets as maps, the fingerprint as a uint64.
type rule struct {
	name string
	cont bool

	// Statement predicates (cached per statement text and engine).
	stmtPred    bool
	fingerprint uint64
	hasFP       bool
	pattern     *regexp.Regexp
	relAny      []relMatcher
	relAll      []relMatcher
	kinds       map[string]bool

	// Session predicates (checked on every call).
	sessPred bool
	db       nameMatcher
	user     nameMatcher
	app      nameMatcher
	addrs    []netip.Prefix

	// Actions.
	maxRows     int
	hasMaxRows  bool
	hint        string
	replaceRe   *regexp.Regexp
	replaceWith string
	replaceSQL  string
	replaceArgs map[int]bool
	block       *Block
	cache       *CacheAction
	route       string
	log         bool
	notice      string
}

type relMatcher struct{ schema, name string }

// match: a rule's "orders" matches orders in any schema; "public.orders"
// matches public.orders and an unqualified orders, since the analyzer
// cannot resolve search_path and missing a rule is worse than applying it.
func (m relMatcher) match(r Relation) bool {
	return r.Name == m.name && (m.schema == "" || r.Schema == "" || r.Schema == m.schema)
}

type nameMatcher struct {
	set   bool
	exact map[string]bool
	res   []*regexp.Regexp
}

func (m *nameMatcher) match(s string) bool {
	if !m.set {
		return true
	}
	if m.exact[s] {
		return true
	}
	for _, re := range m.res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// matchStatement evaluates the statement predicates. Statements that did
// not parse match only rules without statement predicates.
func (r *rule) matchStatement(st *Statement) bool {
	if !r.stmtPred {
		return true
	}
	if st.ParseError != "" {
		return false
	}
	if r.hasFP && st.Fingerprint != r.fingerprint {
		return false
	}
	if r.kinds != nil && !r.kinds[st.Kind] {
		return false
	}
	if len(r.relAny) > 0 {
		found := false
		for _, m := range r.relAny {
			if anyRel(st, m) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	for _, m := range r.relAll {
		if !anyRel(st, m) {
			return false
		}
	}
	if r.pattern != nil && !r.pattern.MatchString(st.Normalized) {
		return false
	}
	return true
}

func anyRel(st *Statement, m relMatcher) bool {
	for _, r := range st.Reads {
		if m.match(r) {
			return true
		}
	}
	for _, r := range st.Writes {
		if m.match(r) {
			return true
		}
	}
	return false
}

// matchSession evaluates the session predicates.
func (r *rule) matchSession(s *Session) bool {
	if !r.sessPred {
		return true
	}
	if !r.db.match(s.Database) || !r.user.match(s.User) || !r.app.match(s.ApplicationName) {
		return false
	}
	if len(r.addrs) > 0 {
		if !s.ClientAddr.IsValid() {
			return false
		}
		a := s.ClientAddr.Unmap()
		ok := false
		for _, p := range r.addrs {
			if p.Contains(a) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
