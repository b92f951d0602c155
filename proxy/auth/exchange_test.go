package auth_test

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/sluice-proxy/sluice/proxy/auth"
)

// scramClient is a hand-written SCRAM-SHA-256 client (RFC 5802) for the
// protocol corners pgconn never exercises.
type scramClient struct {
	password, gs2, nonce, bare string
	salted                     []byte
	authMessage                string
}

func newSCRAMClient(password, gs2 string) *scramClient {
	c := &scramClient{password: password, gs2: gs2, nonce: "clientnonce123"}
	c.bare = "n=,r=" + c.nonce
	return c
}

func (c *scramClient) first() []byte { return []byte(c.gs2 + c.bare) }

// final answers server-first-message with client-final-message.
func (c *scramClient) final(t testing.TB, serverFirst string) []byte {
	t.Helper()
	attrs := map[string]string{}
	for _, kv := range strings.Split(serverFirst, ",") {
		attrs[kv[:1]] = kv[2:]
	}
	if !strings.HasPrefix(attrs["r"], c.nonce) || len(attrs["r"]) <= len(c.nonce) {
		t.Fatalf("server nonce %q does not extend client nonce", attrs["r"])
	}
	salt, err := base64.StdEncoding.DecodeString(attrs["s"])
	if err != nil {
		t.Fatal(err)
	}
	iter, err := strconv.Atoi(attrs["i"])
	if err != nil {
		t.Fatal(err)
	}
	c.salted, _ = pbkdf2.Key(sha256.New, c.password, salt, iter, 32)
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(c.gs2)) + ",r=" + attrs["r"]
	c.authMessage = c.bare + "," + serverFirst + "," + withoutProof
	clientKey := mac(c.salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	sig := mac(storedKey[:], c.authMessage)
	for i := range clientKey {
		clientKey[i] ^= sig[i]
	}
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(clientKey))
}

func (c *scramClient) serverSignature() string {
	return "v=" + base64.StdEncoding.EncodeToString(mac(mac(c.salted, "Server Key"), c.authMessage))
}

func mac(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// expectSASL reads AuthenticationSASL and checks that only SCRAM-SHA-256
// is offered (no -PLUS: we have no channel binding data).
func expectSASL(t testing.TB, fe *pgproto3.Frontend) {
	t.Helper()
	m, ok := receive(t, fe).(*pgproto3.AuthenticationSASL)
	if !ok {
		t.Fatalf("want AuthenticationSASL, got %T", m)
	}
	if len(m.AuthMechanisms) != 1 || m.AuthMechanisms[0] != "SCRAM-SHA-256" {
		t.Fatalf("mechanisms = %q, want [SCRAM-SHA-256]", m.AuthMechanisms)
	}
}

func TestSCRAMExchange(t *testing.T) {
	secret := secretOf(t, "alice", "s3cret")
	tests := []struct {
		name     string
		gs2      string
		noInit   bool // send the client-first-message after an empty challenge
		password string
		wantCode string
	}{
		{name: "gs2 n", gs2: "n,,", password: "s3cret"},
		{name: "gs2 y (client could bind, we cannot)", gs2: "y,,", password: "s3cret"},
		{name: "no initial response", gs2: "n,,", noInit: true, password: "s3cret"},
		{name: "wrong password", gs2: "n,,", password: "nope", wantCode: "28P01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fe, _, wait := pipeAuth(t, auth.MethodSCRAM, "alice", secret, true)
			c := newSCRAMClient(tt.password, tt.gs2)
			expectSASL(t, fe)
			if tt.noInit {
				send(t, fe, &pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256"})
				if m, ok := receive(t, fe).(*pgproto3.AuthenticationSASLContinue); !ok || len(m.Data) != 0 {
					t.Fatalf("want empty AuthenticationSASLContinue, got %#v", m)
				}
				send(t, fe, &pgproto3.SASLResponse{Data: c.first()})
			} else {
				send(t, fe, &pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: c.first()})
			}
			cont, ok := receive(t, fe).(*pgproto3.AuthenticationSASLContinue)
			if !ok {
				t.Fatalf("want AuthenticationSASLContinue, got %T", cont)
			}
			send(t, fe, &pgproto3.SASLResponse{Data: c.final(t, string(cont.Data))})
			if tt.wantCode != "" {
				wantCode(t, wait(), tt.wantCode, `password authentication failed for user "alice"`)
				return
			}
			fin, ok := receive(t, fe).(*pgproto3.AuthenticationSASLFinal)
			if !ok {
				t.Fatalf("want AuthenticationSASLFinal, got %T", fin)
			}
			if string(fin.Data) != c.serverSignature() {
				t.Fatalf("server signature %q, want %q", fin.Data, c.serverSignature())
			}
			if _, ok := receive(t, fe).(*pgproto3.AuthenticationOk); !ok {
				t.Fatal("want AuthenticationOk after SASLFinal")
			}
			if err := wait(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSCRAMProtocolViolations(t *testing.T) {
	secret := secretOf(t, "alice", "s3cret")
	tests := []struct {
		name    string
		send    pgproto3.FrontendMessage
		code    string
		message string
	}{
		{"PLUS not offered", &pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256-PLUS", Data: []byte("p=tls-server-end-point,,n=,r=abc")},
			"08P01", "client selected an invalid SASL authentication mechanism"},
		{"unknown mechanism", &pgproto3.SASLInitialResponse{AuthMechanism: "OAUTHBEARER", Data: []byte("n,,")},
			"08P01", "client selected an invalid SASL authentication mechanism"},
		{"channel binding requested", &pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("p=tls-server-end-point,,n=,r=abc")},
			"08P01", "malformed SCRAM message"},
		{"garbage", &pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("hello")},
			"08P01", "malformed SCRAM message"},
		{"query instead of SASL", &pgproto3.Query{String: "select 1"},
			"08P01", "expected SASL response, got message type 81"},
		{"too long", &pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=" + strings.Repeat("a", 2000))},
			"28P01", `password authentication failed for user "alice"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fe, _, wait := pipeAuth(t, auth.MethodSCRAM, "alice", secret, true)
			expectSASL(t, fe)
			send(t, fe, tt.send)
			wantCode(t, wait(), tt.code, tt.message)
		})
	}
}

// TestMockSaltStable checks what keeps user names secret under SCRAM: an
// unknown user is shown the same salt every time, and a plaintext-secret
// user the very salt the same name would get if it did not exist.
func TestMockSaltStable(t *testing.T) {
	salt := func(user string, secret auth.Secret, found bool) string {
		fe, cli, wait := pipeAuth(t, auth.MethodSCRAM, user, secret, found)
		expectSASL(t, fe)
		send(t, fe, &pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: newSCRAMClient("x", "n,,").first()})
		cont := receive(t, fe).(*pgproto3.AuthenticationSASLContinue)
		_, after, _ := strings.Cut(string(cont.Data), ",s=")
		cli.Close()
		if err := wait(); !errors.Is(err, auth.ErrDisconnected) || auth.IsAuthFailure(err) {
			t.Fatalf("after hang-up: %v, want ErrDisconnected", err)
		}
		return after
	}
	ghost1 := salt("ghost", auth.Secret{}, false)
	ghost2 := salt("ghost", auth.Secret{}, false)
	other := salt("other", auth.Secret{}, false)
	real := salt("ghost", secretOf(t, "ghost", "pw"), true)
	if ghost1 != ghost2 {
		t.Errorf("unknown user salt changed: %q then %q", ghost1, ghost2)
	}
	if ghost1 == other {
		t.Errorf("two unknown users share salt %q", ghost1)
	}
	if real != ghost1 {
		t.Errorf("plaintext user salt %q differs from the mock salt %q of the same name", real, ghost1)
	}
	if !strings.HasSuffix(ghost1, ",i=4096") {
		t.Errorf("mock iterations: %q", ghost1)
	}
}

func TestPasswordExchanges(t *testing.T) {
	scram := secretOf(t, "alice", auth.SCRAMVerifier("s3cret", nil, 0))
	plain := secretOf(t, "alice", "s3cret")
	tests := []struct {
		name      string
		method    auth.Method
		secret    auth.Secret
		wantFirst string // challenge type the client must see
		reply     pgproto3.FrontendMessage
		hangUp    bool
		code      string
		message   string
	}{
		{name: "md5 empty password", method: auth.MethodMD5, secret: plain, wantFirst: "md5",
			reply: &pgproto3.PasswordMessage{}, code: "28P01", message: "empty password returned by client"},
		{name: "cleartext empty password", method: auth.MethodPassword, secret: plain, wantFirst: "password",
			reply: &pgproto3.PasswordMessage{}, code: "28P01", message: "empty password returned by client"},
		{name: "md5 wrong message", method: auth.MethodMD5, secret: plain, wantFirst: "md5",
			reply: &pgproto3.Sync{}, code: "08P01", message: "expected password response, got message type 83"},
		{name: "cleartext wrong message", method: auth.MethodPassword, secret: plain, wantFirst: "password",
			reply: &pgproto3.Terminate{}, code: "08P01", message: "expected password response, got message type 88"},
		{name: "cleartext right", method: auth.MethodPassword, secret: plain, wantFirst: "password",
			reply: &pgproto3.PasswordMessage{Password: "s3cret"}},
		{name: "md5 method, scram secret gets SCRAM", method: auth.MethodMD5, secret: scram, wantFirst: "sasl", hangUp: true},
		{name: "client hangs up at md5 challenge", method: auth.MethodMD5, secret: plain, wantFirst: "md5", hangUp: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fe, cli, wait := pipeAuth(t, tt.method, "alice", tt.secret, true)
			var got string
			switch receive(t, fe).(type) {
			case *pgproto3.AuthenticationMD5Password:
				got = "md5"
			case *pgproto3.AuthenticationCleartextPassword:
				got = "password"
			case *pgproto3.AuthenticationSASL:
				got = "sasl"
			}
			if got != tt.wantFirst {
				t.Fatalf("first challenge %q, want %q", got, tt.wantFirst)
			}
			if tt.hangUp {
				cli.Close()
				err := wait()
				if !errors.Is(err, auth.ErrDisconnected) || auth.IsAuthFailure(err) {
					t.Fatalf("got %v, want ErrDisconnected", err)
				}
				return
			}
			send(t, fe, tt.reply)
			if tt.code == "" {
				if _, ok := receive(t, fe).(*pgproto3.AuthenticationOk); !ok {
					t.Fatal("want AuthenticationOk")
				}
				if err := wait(); err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCode(t, wait(), tt.code, tt.message)
		})
	}
}

// TestRawProtocolErrors writes bytes no pgproto3.Frontend would send.
func TestRawProtocolErrors(t *testing.T) {
	plain := secretOf(t, "alice", "s3cret")
	tests := []struct {
		name    string
		method  auth.Method
		raw     []byte
		message string
	}{
		{"unknown message type", auth.MethodPassword, []byte{'z', 0, 0, 0, 4}, "expected password response, got message type 122"},
		{"password without terminator", auth.MethodPassword, []byte{'p', 0, 0, 0, 6, 'a', 'b'}, "invalid password packet size"},
		{"SASL initial response cut short", auth.MethodSCRAM, []byte{'p', 0, 0, 0, 6, 'x', 0}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fe, cli, wait := pipeAuth(t, tt.method, "alice", plain, true)
			receive(t, fe)
			if _, err := cli.Write(tt.raw); err != nil {
				t.Fatal(err)
			}
			wantCode(t, wait(), "08P01", tt.message)
		})
	}
}

// md5Answer is what libpq sends to an md5 challenge.
func md5Answer(user, password string, salt [4]byte) string {
	inner := auth.MD5Verifier(user, password)[3:]
	sum := md5.Sum(append([]byte(inner), salt[:]...))
	return "md5" + hex.EncodeToString(sum[:])
}

// byteWriter delivers every write one byte at a time, so the server's
// reader sees each message split at every byte boundary.
type byteWriter struct{ w io.Writer }

func (b byteWriter) Write(p []byte) (int, error) {
	for i := range p {
		if _, err := b.w.Write(p[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(p), nil
}

func TestMessagesSplitAtEveryByte(t *testing.T) {
	secret := secretOf(t, "alice", "s3cret")
	t.Run("scram", func(t *testing.T) {
		_, cli, wait := pipeAuth(t, auth.MethodSCRAM, "alice", secret, true)
		fe := pgproto3.NewFrontend(cli, byteWriter{cli})
		c := newSCRAMClient("s3cret", "n,,")
		expectSASL(t, fe)
		send(t, fe, &pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: c.first()})
		cont := receive(t, fe).(*pgproto3.AuthenticationSASLContinue)
		send(t, fe, &pgproto3.SASLResponse{Data: c.final(t, string(cont.Data))})
		if fin, ok := receive(t, fe).(*pgproto3.AuthenticationSASLFinal); !ok || string(fin.Data) != c.serverSignature() {
			t.Fatalf("bad SASLFinal %#v", fin)
		}
		receive(t, fe)
		if err := wait(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("md5", func(t *testing.T) {
		_, cli, wait := pipeAuth(t, auth.MethodMD5, "alice", secret, true)
		fe := pgproto3.NewFrontend(cli, byteWriter{cli})
		ch := receive(t, fe).(*pgproto3.AuthenticationMD5Password)
		send(t, fe, &pgproto3.PasswordMessage{Password: md5Answer("alice", "s3cret", ch.Salt)})
		if _, ok := receive(t, fe).(*pgproto3.AuthenticationOk); !ok {
			t.Fatal("want AuthenticationOk")
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
	})
}
