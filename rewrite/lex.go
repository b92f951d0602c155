package rewrite

// A small Go lexer for the common shape of simple-protocol statements: one
// statement, identifiers, operators, $n parameters, plain numbers and
// '...' strings. It exists so that texts differing only in literal values
// (pgbench -S sends "... WHERE aid = 12345" with a new number each time)
// share one analysis instead of each paying a pg_query parse. It never has
// to be complete: anything it is not sure to tokenize exactly as Postgres'
// scanner does (comments, dollar quotes, E'' / U&'' / B'' / X'' strings,
// numbers with trailing junk, several statements) makes it give up, and the
// text takes the exact-text path.

type lexKind uint8

const (
	lexIdent lexKind = iota
	lexNumber
	lexString
	lexParam
	lexOther
	lexSemicolon
)

type lexTok struct {
	start, end int32
	kind       lexKind
}

// maxShapeText bounds what the shape path handles; longer texts use the
// exact path.
const maxShapeText = 8 << 10

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentCont(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9' || c == '$'
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// lexShape tokenizes s into toks (reusing its capacity) and writes the
// shape key into key: s with every literal replaced by a marker (0x00 plus
// 'N' or 'S'; NUL cannot occur in a Postgres query string). ok is false
// when the text is not of the simple shape.
func lexShape(s string, toks []lexTok, key []byte) ([]lexTok, []byte, bool) {
	if len(s) == 0 || len(s) > maxShapeText {
		return toks, key, false
	}
	toks = toks[:0]
	key = key[:0]
	last := 0 // start of the text not yet copied into key
	sawSemicolon := false
	i := 0
	for i < len(s) {
		c := s[i]
		if isSpace(c) {
			i++
			continue
		}
		if sawSemicolon && c != ';' {
			return toks, key, false // a second statement
		}
		if c < 0x20 || c == 0x7f || c == '\\' {
			return toks, key, false
		}
		if i+1 < len(s) && (c == '-' && s[i+1] == '-' || c == '/' && s[i+1] == '*') {
			return toks, key, false // comment
		}
		start := i
		switch {
		case isIdentStart(c):
			for i < len(s) && isIdentCont(s[i]) {
				i++
			}
			if i < len(s) && (s[i] == '\'' || s[i] == '"' || s[i] == '&') {
				return toks, key, false // E'..', U&'..', B'..' and friends
			}
			toks = append(toks, lexTok{int32(start), int32(i), lexIdent})
		case c == '"':
			i++
			for {
				if i >= len(s) {
					return toks, key, false
				}
				if s[i] == '"' {
					if i+1 < len(s) && s[i+1] == '"' {
						i += 2
						continue
					}
					i++
					break
				}
				i++
			}
			toks = append(toks, lexTok{int32(start), int32(i), lexIdent})
		case c >= '0' && c <= '9':
			if start > 0 && (s[start-1] == '.' || isIdentCont(s[start-1])) {
				return toks, key, false
			}
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
			}
			if i < len(s) && s[i] == '.' {
				i++
				for i < len(s) && s[i] >= '0' && s[i] <= '9' {
					i++
				}
			}
			if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
				i++
				if i < len(s) && (s[i] == '+' || s[i] == '-') {
					i++
				}
				d := i
				for i < len(s) && s[i] >= '0' && s[i] <= '9' {
					i++
				}
				if i == d {
					return toks, key, false
				}
			}
			if i < len(s) && (isIdentCont(s[i]) || s[i] == '.') {
				return toks, key, false // 0x1F, 1_000, 1abc, 1..2: leave to the real scanner
			}
			toks = append(toks, lexTok{int32(start), int32(i), lexNumber})
			key = append(key, s[last:start]...)
			key = append(key, 0, 'N')
			last = i
		case c == '\'':
			i++
			for {
				if i >= len(s) {
					return toks, key, false
				}
				if s[i] == '\'' {
					if i+1 < len(s) && s[i+1] == '\'' {
						i += 2
						continue
					}
					i++
					break
				}
				i++
			}
			toks = append(toks, lexTok{int32(start), int32(i), lexString})
			key = append(key, s[last:start]...)
			key = append(key, 0, 'S')
			last = i
		case c == '$':
			i++
			d := i
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
			}
			if i == d || i < len(s) && isIdentCont(s[i]) {
				return toks, key, false // dollar quote
			}
			toks = append(toks, lexTok{int32(start), int32(i), lexParam})
		case c == ';':
			i++
			sawSemicolon = true
			toks = append(toks, lexTok{int32(start), int32(i), lexSemicolon})
		case c == '.':
			if i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
				return toks, key, false // .5
			}
			i++
			toks = append(toks, lexTok{int32(start), int32(i), lexOther})
		default:
			i++
			toks = append(toks, lexTok{int32(start), int32(i), lexOther})
		}
	}
	if len(toks) == 0 {
		return toks, key, false
	}
	key = append(key, s[last:]...)
	return toks, key, true
}

// span returns the statement bounds: the first token's start and the last
// non-semicolon token's end.
func lexSpan(toks []lexTok) (int, int, bool) {
	end := -1
	for j := len(toks) - 1; j >= 0; j-- {
		if toks[j].kind != lexSemicolon {
			end = int(toks[j].end)
			break
		}
	}
	if end < 0 {
		return 0, 0, false
	}
	return int(toks[0].start), end, true
}
