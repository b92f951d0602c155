package auth_test

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sluice-proxy/sluice/proxy/auth"
)

// TestRealClient logs in with pgx's pgconn, a real client implementing
// SCRAM-SHA-256, md5 and clear-text password, against every combination of
// method and secret kind PostgreSQL allows or refuses.
func TestRealClient(t *testing.T) {
	const pw = "s3cret"
	plain := secretOf(t, "alice", pw)
	md5 := secretOf(t, "alice", auth.MD5Verifier("alice", pw))
	scram := secretOf(t, "alice", auth.SCRAMVerifier(pw, nil, 4096))
	failed := `password authentication failed for user "alice"`
	tests := []struct {
		name     string
		method   auth.Method
		secret   *auth.Secret // nil: unknown user
		password string
		wantCode string // "" = login succeeds
		wantMsg  string
	}{
		{"scram plaintext", auth.MethodSCRAM, &plain, pw, "", ""},
		{"scram plaintext wrong", auth.MethodSCRAM, &plain, "nope", "28P01", failed},
		{"scram verifier", auth.MethodSCRAM, &scram, pw, "", ""},
		{"scram verifier wrong", auth.MethodSCRAM, &scram, "nope", "28P01", failed},
		{"scram unknown user", auth.MethodSCRAM, nil, pw, "28P01", failed},
		{"scram md5 secret refused", auth.MethodSCRAM, &md5, pw, "28P01", failed},
		{"md5 plaintext", auth.MethodMD5, &plain, pw, "", ""},
		{"md5 plaintext wrong", auth.MethodMD5, &plain, "nope", "28P01", failed},
		{"md5 verifier", auth.MethodMD5, &md5, pw, "", ""},
		{"md5 verifier wrong", auth.MethodMD5, &md5, "nope", "28P01", failed},
		{"md5 falls back to scram", auth.MethodMD5, &scram, pw, "", ""},
		{"md5 falls back to scram wrong", auth.MethodMD5, &scram, "nope", "28P01", failed},
		{"md5 unknown user", auth.MethodMD5, nil, pw, "28P01", failed},
		{"password plaintext", auth.MethodPassword, &plain, pw, "", ""},
		{"password md5", auth.MethodPassword, &md5, pw, "", ""},
		{"password scram", auth.MethodPassword, &scram, pw, "", ""},
		{"password plaintext wrong", auth.MethodPassword, &plain, "nope", "28P01", failed},
		{"password md5 wrong", auth.MethodPassword, &md5, "nope", "28P01", failed},
		{"password scram wrong", auth.MethodPassword, &scram, "nope", "28P01", failed},
		{"password unknown user", auth.MethodPassword, nil, pw, "28P01", failed},
		{"trust", auth.MethodTrust, nil, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, results := fakeServer(t, tt.method, func(user string) (auth.Secret, bool) {
				if tt.secret == nil || user != "alice" {
					return auth.Secret{}, false
				}
				return *tt.secret, true
			})
			err := connect(t, addr, "alice", tt.password)
			serverErr := <-results
			if tt.wantCode == "" {
				if err != nil || serverErr != nil {
					t.Fatalf("client: %v, server: %v; want success", err, serverErr)
				}
				return
			}
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) {
				t.Fatalf("client error = %v, want PgError %s", err, tt.wantCode)
			}
			if pgErr.Code != tt.wantCode || pgErr.Message != tt.wantMsg || pgErr.Severity != "FATAL" {
				t.Fatalf("client got %s %s %q, want FATAL %s %q", pgErr.Severity, pgErr.Code, pgErr.Message, tt.wantCode, tt.wantMsg)
			}
			if !auth.IsAuthFailure(serverErr) {
				t.Fatalf("server error %v: IsAuthFailure = false", serverErr)
			}
		})
	}
}

// TestRealClientUnicodePassword checks SASLprep: PostgreSQL normalizes
// passwords (NFKC) before hashing, so a decomposed spelling of the stored
// password must log in, through SCRAM and through the clear-text method
// against a SCRAM verifier.
func TestRealClientUnicodePassword(t *testing.T) {
	stored := "p\u00e4ss w\u00f6rd"  // composed ä, ö
	typed := "pa\u0308ss wo\u0308rd" // a + combining diaeresis
	for _, tc := range []struct {
		method auth.Method
		secret string
	}{
		{auth.MethodSCRAM, stored},
		{auth.MethodSCRAM, auth.SCRAMVerifier(stored, nil, 4096)},
		{auth.MethodPassword, auth.SCRAMVerifier(stored, nil, 4096)},
	} {
		sec := secretOf(t, "bob", tc.secret)
		addr, results := fakeServer(t, tc.method, func(string) (auth.Secret, bool) { return sec, true })
		if err := connect(t, addr, "bob", typed); err != nil {
			t.Fatalf("%s with %s: %v", tc.method, sec, err)
		}
		if err := <-results; err != nil {
			t.Fatalf("server: %v", err)
		}
	}
}
