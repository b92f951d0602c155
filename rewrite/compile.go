package rewrite

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

var knownKinds = map[string]bool{}

func init() {
	for _, k := range strings.Fields(`select insert update delete merge copy_from copy_to ddl create_table_as truncate
		refresh_matview begin commit rollback savepoint transaction set reset show discard prepare execute
		deallocate listen unlisten notify call do explain declare fetch close lock vacuum load values other`) {
		knownKinds[k] = true
	}
}

// compileRule validates and compiles rules[i]; every problem is reported,
// each prefixed with its key path and the rule's name.
func compileRule(i int, rc *RuleConfig, ec EngineConfig) (*rule, error) {
	var errs []error
	where := func(key string) string {
		if rc.Name == "" {
			return fmt.Sprintf("rules[%d].%s", i, key)
		}
		return fmt.Sprintf("rules[%d].%s (rule %q)", i, key, rc.Name)
	}
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", where(key), fmt.Sprintf(format, args...)))
	}
	r := &rule{name: rc.Name, cont: rc.Continue}
	if strings.TrimSpace(rc.Name) == "" {
		bad("name", "required")
	}
	m := rc.Match
	if m.Fingerprint != "" {
		fp, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(m.Fingerprint), "0x"), 16, 64)
		if err != nil {
			bad("match.fingerprint", "%q is not a hex fingerprint", m.Fingerprint)
		}
		r.fingerprint, r.hasFP, r.stmtPred = fp, true, true
	}
	if m.Pattern != "" {
		re, err := regexp.Compile(m.Pattern)
		if err != nil {
			bad("match.pattern", "%v", err)
		}
		r.pattern, r.stmtPred = re, true
	}
	for j, s := range m.RelationsAny {
		rm, err := parseRelName(s)
		if err != nil {
			bad(fmt.Sprintf("match.relations_any[%d]", j), "%v", err)
		}
		r.relAny = append(r.relAny, rm)
		r.stmtPred = true
	}
	for j, s := range m.RelationsAll {
		rm, err := parseRelName(s)
		if err != nil {
			bad(fmt.Sprintf("match.relations_all[%d]", j), "%v", err)
		}
		r.relAll = append(r.relAll, rm)
		r.stmtPred = true
	}
	if len(m.Kind) > 0 {
		r.kinds = map[string]bool{}
		for j, k := range m.Kind {
			k = strings.ToLower(k)
			if !knownKinds[k] {
				bad(fmt.Sprintf("match.kind[%d]", j), "unknown statement kind %q", k)
			}
			r.kinds[k] = true
		}
		r.stmtPred = true
	}
	for _, nm := range []struct {
		key  string
		list []string
		dst  *nameMatcher
	}{{"match.database", m.Database, &r.db}, {"match.user", m.User, &r.user}, {"match.application_name", m.ApplicationName, &r.app}} {
		if len(nm.list) == 0 {
			continue
		}
		nm.dst.set, nm.dst.exact = true, map[string]bool{}
		r.sessPred = true
		for j, s := range nm.list {
			if strings.HasPrefix(s, "/") {
				re, err := regexp.Compile(s[1:])
				if err != nil {
					bad(fmt.Sprintf("%s[%d]", nm.key, j), "%v", err)
					continue
				}
				nm.dst.res = append(nm.dst.res, re)
			} else {
				nm.dst.exact[s] = true
			}
		}
	}
	for j, s := range m.ClientAddr {
		r.sessPred = true
		if p, err := netip.ParsePrefix(s); err == nil {
			r.addrs = append(r.addrs, p.Masked())
		} else if a, err := netip.ParseAddr(s); err == nil {
			r.addrs = append(r.addrs, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		} else {
			bad(fmt.Sprintf("match.client_addr[%d]", j), "%q is neither a CIDR prefix nor an address", s)
		}
	}

	actions := 0
	if rc.MaxRows != nil {
		actions++
		if *rc.MaxRows < 0 {
			bad("max_rows", "must be >= 0")
		}
		r.maxRows, r.hasMaxRows = *rc.MaxRows, true
		r.notice = noticeText(ec.NoticeTemplate, rc.Name, *rc.MaxRows)
	}
	if rc.Hint != "" {
		actions++
		if err := validateHint(rc.Hint); err != nil {
			bad("hint", "%v", err)
		}
		r.hint = strings.TrimSpace(rc.Hint)
	}
	if rc.Replace != nil {
		actions++
		if rc.ReplaceWith != "" {
			bad("replace", "use either replace or replace_with, not both")
		}
		if rc.Replace.Pattern == "" {
			bad("replace.pattern", "required")
		} else if re, err := regexp.Compile(rc.Replace.Pattern); err != nil {
			bad("replace.pattern", "%v", err)
		} else {
			r.replaceRe = re
		}
		r.replaceWith = rc.Replace.With
	}
	if rc.ReplaceWith != "" {
		actions++
		res, err := pg.Parse(rc.ReplaceWith)
		switch {
		case err != nil:
			bad("replace_with", "does not parse: %v", err)
		case len(res.Stmts) != 1:
			bad("replace_with", "must be exactly one statement, got %d", len(res.Stmts))
		}
		r.replaceSQL = strings.TrimSpace(strings.TrimRight(strings.TrimSpace(rc.ReplaceWith), ";"))
		r.replaceArgs = paramNumbers(r.replaceSQL)
	}
	if rc.Block != "" {
		actions++
		code := ec.BlockSQLState
		if rc.SQLState != "" {
			code = rc.SQLState
			if !validSQLState(code) {
				bad("sqlstate", "%q is not a 5-character SQLSTATE", code)
			}
		}
		r.block = &Block{Code: code, Message: rc.Block, Rule: rc.Name}
	} else if rc.SQLState != "" {
		bad("sqlstate", "only meaningful with block")
	}
	if rc.Cache != nil {
		actions++
		if rc.Cache.TTL < 0 {
			bad("cache.ttl", "must be >= 0")
		}
		c := *rc.Cache
		r.cache = &c
	}
	if rc.Route != "" {
		actions++
		if rc.Route != "primary" && rc.Route != "replica" {
			bad("route", "must be primary or replica, got %q", rc.Route)
		}
		r.route = rc.Route
	}
	if rc.Log {
		actions++
		r.log = true
	}
	if actions == 0 {
		bad("name", "rule has no action (max_rows, hint, replace, replace_with, block, cache, route or log)")
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// parseRelName reads "table", "schema.table" or quoted identifiers the way
// Postgres does: unquoted names fold to lower case.
func parseRelName(s string) (relMatcher, error) {
	parts, err := splitIdent(s)
	if err != nil {
		return relMatcher{}, err
	}
	switch len(parts) {
	case 1:
		return relMatcher{name: parts[0]}, nil
	case 2:
		return relMatcher{schema: parts[0], name: parts[1]}, nil
	}
	return relMatcher{}, fmt.Errorf("%q: want table or schema.table", s)
}

func splitIdent(s string) ([]string, error) {
	var parts []string
	for len(s) > 0 {
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote in %q", s)
			}
			parts = append(parts, s[1:end+1])
			s = s[end+2:]
		} else {
			end := strings.IndexByte(s, '.')
			if end < 0 {
				end = len(s)
			}
			parts = append(parts, strings.ToLower(strings.TrimSpace(s[:end])))
			s = s[end:]
		}
		if len(s) > 0 {
			if s[0] != '.' {
				return nil, fmt.Errorf("unexpected %q", s)
			}
			s = s[1:]
			if s == "" {
				return nil, fmt.Errorf("trailing dot")
			}
		}
	}
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("empty name")
		}
	}
	return parts, nil
}

func noticeText(tmpl, rule string, n int) string {
	return strings.NewReplacer("{rule}", rule, "{max_rows}", strconv.Itoa(n)).Replace(tmpl)
}
