package auth_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/proxy/auth"
)

func TestMD5Verifier(t *testing.T) {
	// Values from PostgreSQL: SELECT 'md5' || md5('secret' || 'alice').
	tests := []struct{ user, password, want string }{
		{"alice", "secret", "md54a0a68b43b6cd5cf266fa02f196e2371"},
		{"postgres", "postgres", "md53175bce1d3201d16594cebf9d7eb3f9d"},
	}
	for _, tt := range tests {
		if got := auth.MD5Verifier(tt.user, tt.password); got != tt.want {
			t.Errorf("MD5Verifier(%q, %q) = %s, want %s", tt.user, tt.password, got, tt.want)
		}
	}
}

func TestSCRAMVerifier(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	// RFC 7677's user: StoredKey and ServerKey follow from the vector's
	// ClientProof and ServerSignature (checked in the internal RFC test);
	// this is their encoding as PostgreSQL stores it.
	want := "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
	if got := auth.SCRAMVerifier("pencil", salt, 4096); got != want {
		t.Fatalf("SCRAMVerifier = %s\nwant            %s", got, want)
	}
	if got := auth.SCRAMVerifier("pencil", salt, 0); got != want {
		t.Errorf("iterations 0 should mean 4096: %s", got)
	}
	a, b := auth.SCRAMVerifier("pencil", nil, 0), auth.SCRAMVerifier("pencil", nil, 0)
	if a == b || !strings.HasPrefix(a, "SCRAM-SHA-256$4096:") {
		t.Errorf("random salts: %s, %s", a, b)
	}
	if _, err := auth.ParseSecret("u", a); err != nil {
		t.Errorf("own verifier does not parse: %v", err)
	}
}
