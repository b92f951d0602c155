package resultcache

import (
	"strings"
	"time"
)

// Directive is what a /* sluice:... */ comment asks of the cache.
type Directive struct {
	// NoCache: /* sluice:nocache */ bypasses lookup and fill.
	NoCache bool
	// Cache: /* sluice:cache */ or /* sluice:cache ttl=60s */ opts in;
	// TTL 0 means the configured default_ttl.
	Cache bool
	TTL   time.Duration
}

// NormalizeComments removes the comments of sql so that tracing tags (such
// as sqlcommenter's) do not split cache entries, and extracts the sluice
// directive. It respects string constants ('..', E'..'), quoted identifiers
// and dollar quotes, as the PostgreSQL lexer (scan.l) does. A removed comment
// becomes one space only where it separated two tokens; the result is
// trimmed. If the text can't be scanned with certainty (unterminated quote
// or comment, or a backslash in a plain string constant, whose meaning
// depends on standard_conforming_strings) sql is returned unchanged with no
// directive: two different statements must never share a key. Without
// comments sql is returned as-is, without allocating.
func NormalizeComments(sql string) (string, Directive) {
	if !strings.Contains(sql, "--") && !strings.Contains(sql, "/*") {
		return sql, Directive{}
	}
	var out strings.Builder
	out.Grow(len(sql))
	var dir Directive
	haveDir := false
	n := len(sql)
	i := 0
	lastSpace := true // at start: a comment needs no separator
	for i < n {
		c := sql[i]
		switch {
		case c == '-' && i+1 < n && sql[i+1] == '-':
			j := strings.IndexByte(sql[i:], '\n')
			end := n
			if j >= 0 {
				end = i + j
			}
			body := sql[i+2 : end]
			if d, ok := parseDirective(body); ok && !haveDir {
				dir, haveDir = d, true
			} else if ok && d.NoCache {
				dir = d
			}
			i = end
			if !lastSpace && i < n && !isSpace(sql[i]) {
				out.WriteByte(' ')
				lastSpace = true
			}
		case c == '/' && i+1 < n && sql[i+1] == '*':
			end, ok := blockCommentEnd(sql, i)
			if !ok {
				return sql, Directive{}
			}
			body := sql[i+2 : end-2]
			if d, ok := parseDirective(body); ok && !haveDir {
				dir, haveDir = d, true
			} else if ok && d.NoCache {
				dir = d
			}
			i = end
			if !lastSpace && i < n && !isSpace(sql[i]) {
				out.WriteByte(' ')
				lastSpace = true
			}
		case c == '\'':
			escapes := i > 0 && (sql[i-1] == 'E' || sql[i-1] == 'e') && (i < 2 || !isIdentChar(sql[i-2]))
			end, ok := quotedEnd(sql, i, '\'', escapes)
			if !ok {
				return sql, Directive{}
			}
			out.WriteString(sql[i:end])
			i = end
			lastSpace = false
		case c == '"':
			end, ok := quotedEnd(sql, i, '"', false)
			if !ok {
				return sql, Directive{}
			}
			out.WriteString(sql[i:end])
			i = end
			lastSpace = false
		case c == '$' && (i == 0 || !isIdentChar(sql[i-1])):
			tag, ok := dollarTag(sql, i)
			if !ok {
				out.WriteByte(c)
				i++
				lastSpace = false
				continue
			}
			j := strings.Index(sql[i+len(tag):], tag)
			if j < 0 {
				return sql, Directive{}
			}
			end := i + len(tag) + j + len(tag)
			out.WriteString(sql[i:end])
			i = end
			lastSpace = false
		default:
			out.WriteByte(c)
			lastSpace = isSpace(c)
			i++
		}
	}
	if strings.Contains(sql, `\`) && hasPlainBackslash(sql) {
		return sql, Directive{}
	}
	return strings.TrimSpace(out.String()), dir
}

// blockCommentEnd returns the index after the comment opened at i; block
// comments nest in PostgreSQL.
func blockCommentEnd(s string, i int) (int, bool) {
	depth := 0
	for i < len(s)-1 {
		switch {
		case s[i] == '/' && s[i+1] == '*':
			depth++
			i += 2
		case s[i] == '*' && s[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				return i, true
			}
		default:
			i++
		}
	}
	return 0, false
}

// quotedEnd returns the index after the quote opened at i; a doubled quote
// is an escaped quote, and with escapes (E'..') so is a backslash.
func quotedEnd(s string, i int, q byte, escapes bool) (int, bool) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if escapes {
				j++
			}
		case q:
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1, true
		}
	}
	return 0, false
}

// dollarTag recognizes $tag$ (tag: identifier chars, not starting with a
// digit) at i; $1 is a parameter, not a quote.
func dollarTag(s string, i int) (string, bool) {
	for j := i + 1; j < len(s); j++ {
		c := s[j]
		if c == '$' {
			return s[i : j+1], true
		}
		if !isIdentChar(c) || (j == i+1 && c >= '0' && c <= '9') {
			return "", false
		}
	}
	return "", false
}

// hasPlainBackslash reports a backslash inside a plain (non-E) string
// constant, whose meaning the scanner can't know.
func hasPlainBackslash(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			j := strings.IndexByte(s[i:], '\n')
			if j < 0 {
				return false
			}
			i += j
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			end, _ := blockCommentEnd(s, i)
			i = end - 1
		case c == '"':
			end, _ := quotedEnd(s, i, '"', false)
			i = end - 1
		case c == '$' && (i == 0 || !isIdentChar(s[i-1])):
			if tag, ok := dollarTag(s, i); ok {
				j := strings.Index(s[i+len(tag):], tag)
				i += len(tag) + j + len(tag) - 1
			}
		case c == '\'':
			escapes := i > 0 && (s[i-1] == 'E' || s[i-1] == 'e') && (i < 2 || !isIdentChar(s[i-2]))
			end, _ := quotedEnd(s, i, '\'', escapes)
			if !escapes && strings.Contains(s[i:end], `\`) {
				return true
			}
			i = end - 1
		}
	}
	return false
}

// parseDirective reads "sluice:nocache" or "sluice:cache [ttl=DUR]" from a
// comment body. An invalid ttl makes the directive invalid (ignored): a typo
// must not opt a statement in with a surprising TTL.
func parseDirective(body string) (Directive, bool) {
	f := strings.Fields(body)
	if len(f) == 0 {
		return Directive{}, false
	}
	switch f[0] {
	case "sluice:nocache":
		return Directive{NoCache: true}, true
	case "sluice:cache":
		d := Directive{Cache: true}
		for _, kv := range f[1:] {
			v, ok := strings.CutPrefix(kv, "ttl=")
			if !ok {
				return Directive{}, false
			}
			ttl, err := time.ParseDuration(v)
			if err != nil || ttl <= 0 {
				return Directive{}, false
			}
			d.TTL = ttl
		}
		return d, true
	}
	return Directive{}, false
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isIdentChar(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}
