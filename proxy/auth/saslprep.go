package auth

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// saslPrep normalizes a password the way PostgreSQL's pg_saslprep
// (src/common/saslprep.c) does before it derives SCRAM keys, and returns the
// input unchanged wherever pg_saslprep fails: PostgreSQL then hashes the raw
// bytes (auth-scram.c, "SASLprep usage"). Getting this exactly right is what
// makes a verifier computed here equal one stored by CREATE ROLE, and a
// libpq client's proof match ours for non-ASCII passwords.
func saslPrep(password string) string {
	ascii := true
	for i := 0; i < len(password); i++ {
		if password[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	// pg_saslprep returns pure ASCII unchanged, control characters included.
	if ascii || !utf8.ValidString(password) {
		return password
	}

	// 1) Map: RFC 4013 2.1, non-ASCII spaces (C.1.2) to SPACE and the
	// "commonly mapped to nothing" characters (B.1) removed.
	mapped := make([]rune, 0, len(password))
	for _, r := range password {
		switch {
		case mappedToNothing(r):
		case nonASCIISpace(r):
			mapped = append(mapped, ' ')
		default:
			mapped = append(mapped, r)
		}
	}

	// 2) Normalize with NFKC.
	out := norm.NFKC.String(string(mapped))

	// 3) Prohibit, 4) bidi, 5) unassigned: any failure means "use the raw
	// password", as in pg_be_scram_build_secret.
	hasRandAL, hasL := false, false
	for _, r := range out {
		if prohibited(r) || unicode.Is(unassigned32, r) {
			return password
		}
		if unicode.Is(randALCat32, r) {
			hasRandAL = true
		}
		if unicode.Is(lCat32, r) {
			hasL = true
		}
	}
	if hasRandAL {
		first, _ := utf8.DecodeRuneInString(out)
		last, _ := utf8.DecodeLastRuneInString(out)
		if hasL || !unicode.Is(randALCat32, first) || !unicode.Is(randALCat32, last) {
			return password
		}
	}
	return out
}

// mappedToNothing is RFC 3454 table B.1.
func mappedToNothing(r rune) bool {
	switch {
	case r == 0x00AD, r == 0x034F, r == 0x1806,
		r >= 0x180B && r <= 0x180D,
		r >= 0x200B && r <= 0x200D,
		r == 0x2060,
		r >= 0xFE00 && r <= 0xFE0F,
		r == 0xFEFF:
		return true
	}
	return false
}

// nonASCIISpace is RFC 3454 table C.1.2.
func nonASCIISpace(r rune) bool {
	switch {
	case r == 0x00A0, r == 0x1680,
		r >= 0x2000 && r <= 0x200B,
		r == 0x202F, r == 0x205F, r == 0x3000:
		return true
	}
	return false
}

// prohibited is RFC 4013 section 2.3: tables C.1.2, C.2.1, C.2.2, C.3, C.4,
// C.5, C.6, C.7, C.8 and C.9 of RFC 3454.
func prohibited(r rune) bool {
	switch {
	case nonASCIISpace(r): // C.1.2
		return true
	case r < 0x20 || r == 0x7F: // C.2.1
		return true
	case r >= 0x80 && r <= 0x9F, r == 0x06DD, r == 0x070F, r == 0x180E, // C.2.2
		r == 0x200C, r == 0x200D, r == 0x2028, r == 0x2029,
		r >= 0x2060 && r <= 0x2063, r >= 0x206A && r <= 0x206F,
		r == 0xFEFF, r >= 0xFFF9 && r <= 0xFFFC, r >= 0x1D173 && r <= 0x1D17A:
		return true
	case r >= 0xE000 && r <= 0xF8FF, r >= 0xF0000 && r <= 0xFFFFD, r >= 0x100000 && r <= 0x10FFFD: // C.3
		return true
	case r >= 0xFDD0 && r <= 0xFDEF, r&0xFFFE == 0xFFFE: // C.4
		return true
	case r >= 0xD800 && r <= 0xDFFF: // C.5
		return true
	case r >= 0xFFF9 && r <= 0xFFFD: // C.6
		return true
	case r >= 0x2FF0 && r <= 0x2FFB: // C.7
		return true
	case r == 0x0340, r == 0x0341, r == 0x200E, r == 0x200F, r >= 0x202A && r <= 0x202E: // C.8
		return true
	case r == 0xE0001, r >= 0xE0020 && r <= 0xE007F: // C.9
		return true
	}
	return false
}
