package auth_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/proxy/auth"
)

func TestParseSecret(t *testing.T) {
	scram := "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
	tests := []struct {
		in       string
		wantKind string
		wantErr  string
	}{
		{"s3cret", "plaintext", ""},
		{"md54a0a68b43b6cd5cf266fa02f196e2371", "md5", ""},
		{scram, "scram-sha-256", ""},
		{"md5 is my password", "plaintext", ""},                         // not 35 chars
		{"md54A0A68B43B6CD5CF266FA02F196E2371", "", "32 lowercase hex"}, // 35 chars, not hex
		{"", "", "empty password"},
		{"SCRAM-SHA-256$4096:c2FsdA==", "", "missing keys"},
		{"SCRAM-SHA-256$x:c2FsdA==$AAAA:AAAA", "", "iteration count"},
		{"SCRAM-SHA-256$0:c2FsdA==$AAAA:AAAA", "", "iteration count"},
		{"SCRAM-SHA-256$4096:!!$AAAA:AAAA", "", "bad salt"},
		{"SCRAM-SHA-256$4096:c2FsdA==$AAAA:AAAA", "", "stored key"},
		{strings.Replace(scram, ":wfPL", ":AAAA", 1)[:len(scram)-8], "", "server key"},
	}
	for _, tt := range tests {
		s, err := auth.ParseSecret("alice", tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSecret(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || s.Kind() != tt.wantKind {
			t.Errorf("ParseSecret(%q) = %s, %v; want kind %s", tt.in, s.Kind(), err, tt.wantKind)
		}
		pw, ok := s.Plaintext()
		if ok != (tt.wantKind == "plaintext") || (ok && pw != tt.in) {
			t.Errorf("ParseSecret(%q).Plaintext() = %q, %v", tt.in, pw, ok)
		}
	}
}

// TestSecretNeverPrinted: a Secret ends up in logs and panics; its
// password must not.
func TestSecretNeverPrinted(t *testing.T) {
	s := secretOf(t, "alice", "hunter2")
	wrapped := struct{ S auth.Secret }{s}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{s, wrapped, &wrapped} {
			if out := fmt.Sprintf(format, v); strings.Contains(out, "hunter2") {
				t.Errorf("Sprintf(%q) leaks the password: %s", format, out)
			}
		}
	}
	var zero auth.Secret
	if zero.Kind() != "none" {
		t.Errorf("zero Secret kind = %s", zero.Kind())
	}
}
