package rewrite

import (
	"errors"
	"regexp"
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// constMap ties a statement's normalized text back to its original: which
// $n placeholders stand for which constant text, and which $n are the
// client's own parameters (those pg_query leaves alone and numbers the
// constants after).
type constMap struct {
	consts map[int]string
	params map[int]bool
	// spans are the byte ranges of the constants in the original.
	spans [][2]int
}

var errAlign = errors.New("normalized text does not align with the original")

// buildConstMap aligns the scanner tokens of the original and the
// normalized text. pg_query's normalize copies the text verbatim and only
// replaces each constant's token range by $n, so the token streams agree
// except where a placeholder stands for one or more original tokens ("-5",
// "'a' 'b'").
func buildConstMap(orig, norm string, maxParam int) (*constMap, error) {
	os, err := pg.Scan(orig)
	if err != nil {
		return nil, err
	}
	ns, err := pg.Scan(norm)
	if err != nil {
		return nil, err
	}
	cm := &constMap{consts: map[int]string{}, params: map[int]bool{}}
	ot, nt := os.Tokens, ns.Tokens
	i := 0
	for j := 0; j < len(nt); j++ {
		ntext := norm[nt[j].Start:nt[j].End]
		if nt[j].Token == pg.Token_PARAM {
			k, _ := strconv.Atoi(ntext[1:])
			if k <= maxParam {
				cm.params[k] = true
			} else {
				if i >= len(ot) {
					return nil, errAlign
				}
				start := i
				i++
				if j+1 < len(nt) && !(nt[j+1].Token == pg.Token_PARAM) {
					next := norm[nt[j+1].Start:nt[j+1].End]
					for i < len(ot) && orig[ot[i].Start:ot[i].End] != next {
						i++
					}
				} else if j+1 == len(nt) {
					i = len(ot)
				}
				cm.consts[k] = orig[ot[start].Start:ot[i-1].End]
				cm.spans = append(cm.spans, [2]int{int(ot[start].Start), int(ot[i-1].End)})
				continue
			}
		}
		if i >= len(ot) || orig[ot[i].Start:ot[i].End] != ntext {
			return nil, errAlign
		}
		i++
	}
	if i != len(ot) {
		return nil, errAlign
	}
	return cm, nil
}

// expandWith is regexp.Expand restricted to ${1} / ${name} so that a bare
// $1 in the replacement stays a SQL placeholder.
func expandWith(dst []byte, with string, re *regexp.Regexp, src string, m []int) []byte {
	for {
		i := strings.Index(with, "${")
		if i < 0 {
			return append(dst, with...)
		}
		j := strings.IndexByte(with[i:], '}')
		if j < 0 {
			return append(dst, with...)
		}
		dst = append(dst, with[:i]...)
		name := with[i+2 : i+j]
		dst = re.ExpandString(dst, "${"+name+"}", src, m)
		with = with[i+j+1:]
	}
}

// replaceNormalized applies a replace rule to one statement: the pattern
// runs on the normalized text, the result's constant placeholders get their
// original constants back, and the client's parameters must all survive (a
// Bind carries a value for each). ok is false when the pattern does not
// match or the result is unusable; the statement is then left as it is.
func replaceNormalized(si *stmtInfo, re *regexp.Regexp, with string) (string, bool) {
	norm := si.st.Normalized
	ms := re.FindAllStringSubmatchIndex(norm, -1)
	if len(ms) == 0 {
		return "", false
	}
	si.constsOnce.Do(func() {
		cm, err := buildConstMap(si.st.Text, norm, si.maxParam)
		if err == nil {
			si.consts = cm
		}
	})
	cm := si.consts
	if cm == nil {
		return "", false
	}
	var out []byte
	last := 0
	for _, m := range ms {
		out = append(out, norm[last:m[0]]...)
		out = expandWith(out, with, re, norm, m)
		last = m[1]
	}
	out = append(out, norm[last:]...)
	return restoreConstants(string(out), cm, si.maxParam)
}

// restoreConstants replaces placeholders above maxParam by the original
// constants and checks that every client parameter is still referenced.
func restoreConstants(s string, cm *constMap, maxParam int) (string, bool) {
	sc, err := pg.Scan(s)
	if err != nil {
		return "", false
	}
	var b strings.Builder
	seen := map[int]bool{}
	last := 0
	for _, t := range sc.Tokens {
		if t.Token != pg.Token_PARAM {
			continue
		}
		k, err := strconv.Atoi(s[t.Start+1 : t.End])
		if err != nil {
			return "", false
		}
		if k <= maxParam {
			seen[k] = true
			continue
		}
		c, ok := cm.consts[k]
		if !ok {
			return "", false
		}
		b.WriteString(s[last:t.Start])
		b.WriteString(c)
		last = int(t.End)
	}
	b.WriteString(s[last:])
	for k := range cm.params {
		if !seen[k] {
			return "", false
		}
	}
	return b.String(), true
}

// paramNumbers lists the $n a text references.
func paramNumbers(s string) map[int]bool {
	out := map[int]bool{}
	sc, err := pg.Scan(s)
	if err != nil {
		return out
	}
	for _, t := range sc.Tokens {
		if t.Token == pg.Token_PARAM {
			if k, err := strconv.Atoi(s[t.Start+1 : t.End]); err == nil {
				out[k] = true
			}
		}
	}
	return out
}
