package auth_test

import (
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/sluice-proxy/sluice/proxy/auth"
)

// BenchmarkParseSecretPlaintext is the one-off PBKDF2 a plaintext secret
// costs at config load (4096 iterations).
func BenchmarkParseSecretPlaintext(b *testing.B) {
	for b.Loop() {
		if _, err := auth.ParseSecret("alice", "s3cret"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoginSCRAM is a full SCRAM login over net.Pipe with the
// hand-written client, both sides in this process. The client's PBKDF2
// dominates; the server's own share is BenchmarkSCRAMServerExchange.
func BenchmarkLoginSCRAM(b *testing.B) {
	secret := secretOf(b, "alice", "s3cret")
	for b.Loop() {
		fe, _, wait := pipeAuth(b, auth.MethodSCRAM, "alice", secret, true)
		c := newSCRAMClient("s3cret", "n,,")
		expectSASL(b, fe)
		send(b, fe, &pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: c.first()})
		cont := receive(b, fe).(*pgproto3.AuthenticationSASLContinue)
		send(b, fe, &pgproto3.SASLResponse{Data: c.final(b, string(cont.Data))})
		receive(b, fe) // SASLFinal
		receive(b, fe) // Ok
		if err := wait(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoginMD5 is a full md5 login over net.Pipe.
func BenchmarkLoginMD5(b *testing.B) {
	secret := secretOf(b, "alice", "s3cret")
	for b.Loop() {
		fe, _, wait := pipeAuth(b, auth.MethodMD5, "alice", secret, true)
		ch := receive(b, fe).(*pgproto3.AuthenticationMD5Password)
		send(b, fe, &pgproto3.PasswordMessage{Password: md5Answer("alice", "s3cret", ch.Salt)})
		receive(b, fe) // Ok
		if err := wait(); err != nil {
			b.Fatal(err)
		}
	}
}
