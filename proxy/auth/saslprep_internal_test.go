package auth

import "testing"

// RFC 4013 section 3 examples, plus PostgreSQL's fall-back to the raw
// password wherever SASLprep fails.
func TestSASLPrep(t *testing.T) {
	tests := []struct{ in, want string }{
		{"I\u00adX", "IX"},                           // SOFT HYPHEN mapped to nothing
		{"user", "user"},                             // no transformation
		{"USER", "USER"},                             // case preserved
		{"\u00aa", "a"},                              // NFKC
		{"\u2168", "IX"},                             // NFKC
		{"a\u00a0b", "a b"},                          // non-ASCII space mapped to SPACE
		{"\u0007", "\u0007"},                         // ASCII: returned as is (PostgreSQL)
		{"x\u0007\u00e9", "x\u0007\u00e9"},           // prohibited control: raw
		{"\u0627\u0031", "\u0627\u0031"},             // bidi: RandAL not last: raw
		{"\u0627\u0031\u0627", "\u0627\u0031\u0627"}, // valid RTL: unchanged
		{"a\u05d0", "a\u05d0"},                       // mixed L and RandAL: raw
		{"x\u0221", "x\u0221"},                       // unassigned in 3.2: raw
		{"\xff\xfe", "\xff\xfe"},                     // not UTF-8: raw
		{"\ue000x", "\ue000x"},                       // private use: raw
		{"e\u0301", "\u00e9"},                        // composed by NFKC
	}
	for _, tt := range tests {
		if got := saslPrep(tt.in); got != tt.want {
			t.Errorf("saslPrep(%+q) = %+q, want %+q", tt.in, got, tt.want)
		}
	}
}
