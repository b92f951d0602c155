package rewrite

import (
	"fmt"
	"strings"
)

// hintNames are pg_hint_plan's hint keywords (pg_hint_plan docs, "Hint
// list"), lower-cased. A rule's hint must be a sequence of Name(args) with
// these names, so a typo is rejected at load rather than silently ignored by
// the extension.
var hintNames = map[string]bool{}

func init() {
	for _, n := range []string{
		"SeqScan", "TidScan", "IndexScan", "IndexOnlyScan", "BitmapScan", "TidRangeScan",
		"IndexScanRegexp", "IndexOnlyScanRegexp", "BitmapScanRegexp",
		"NoSeqScan", "NoTidScan", "NoIndexScan", "NoIndexOnlyScan", "NoBitmapScan", "NoTidRangeScan",
		"NestLoop", "HashJoin", "MergeJoin", "NoNestLoop", "NoHashJoin", "NoMergeJoin",
		"Leading", "Memoize", "NoMemoize", "Rows", "Parallel", "Set",
	} {
		hintNames[strings.ToLower(n)] = true
	}
}

// validateHint checks that h looks like pg_hint_plan hints:
// Name(args) [Name(args) ...], parentheses balanced, double-quoted
// identifiers allowed, and no comment terminator.
func validateHint(h string) error {
	if strings.TrimSpace(h) == "" {
		return fmt.Errorf("empty hint")
	}
	if strings.Contains(h, "*/") || strings.Contains(h, "/*") {
		return fmt.Errorf("hint must not contain a comment delimiter")
	}
	i := 0
	count := 0
	for {
		for i < len(h) && isHintSpace(h[i]) {
			i++
		}
		if i == len(h) {
			break
		}
		start := i
		for i < len(h) && (isIdentByte(h[i])) {
			i++
		}
		name := h[start:i]
		if name == "" {
			return fmt.Errorf("expected a hint name at offset %d in %q", start, h)
		}
		if !hintNames[strings.ToLower(name)] {
			return fmt.Errorf("%q is not a pg_hint_plan hint", name)
		}
		for i < len(h) && isHintSpace(h[i]) {
			i++
		}
		if i == len(h) || h[i] != '(' {
			return fmt.Errorf("hint %s: expected (", name)
		}
		i++
		// Leading((a b) c) nests parentheses; quoted names may hold any
		// character.
		inQuote := false
		closed := false
		depth := 1
		for i < len(h) {
			c := h[i]
			i++
			if c == '"' {
				inQuote = !inQuote
				continue
			}
			if inQuote {
				continue
			}
			if c == '(' {
				depth++
			}
			if c == ')' {
				depth--
				if depth == 0 {
					closed = true
					break
				}
			}
		}
		if !closed {
			return fmt.Errorf("hint %s: missing )", name)
		}
		count++
	}
	if count == 0 {
		return fmt.Errorf("empty hint")
	}
	return nil
}

func isHintSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isIdentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// withHint puts hint into text's leading pg_hint_plan comment. pg_hint_plan
// reads only the first comment of the query string when it starts with
// "/*+", so an existing one is extended (the rule's hints go after the
// client's: on a conflict pg_hint_plan uses the later one, and the
// operator's rule should win) and otherwise a new one is prepended.
func withHint(text string, hintA, hintB int, hint string) string {
	if hintA >= 0 && hintB-hintA >= 5 {
		inner := strings.TrimSpace(text[hintA+3 : hintB-2])
		return text[:hintA] + "/*+ " + inner + " " + hint + " */" + text[hintB:]
	}
	return "/*+ " + hint + " */ " + text
}
