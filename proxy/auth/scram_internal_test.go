package auth

import (
	"encoding/base64"
	"strings"
	"testing"
)

// RFC 7677 section 3: the SCRAM-SHA-256 example exchange.
const (
	rfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
	rfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	rfcSalt        = "W22ZaJ0SNY7soEsUEjb6gQ=="
	rfcServerFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
	rfcClientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	rfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
)

func rfcKeys(t testing.TB) *scramKeys {
	salt, err := base64.StdEncoding.DecodeString(rfcSalt)
	if err != nil {
		t.Fatal(err)
	}
	return deriveSCRAMKeys("pencil", salt, 4096)
}

func TestSCRAMServerRFC7677(t *testing.T) {
	keys := rfcKeys(t)
	fromVerifier, err := parseSCRAMVerifier(keys.verifier())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		keys        *scramKeys
		doomed      bool
		clientFinal string
		wantFinal   string
		wantCode    string
	}{
		{name: "derived keys", keys: keys, clientFinal: rfcClientFinal, wantFinal: rfcServerFinal},
		{name: "keys from verifier", keys: fromVerifier, clientFinal: rfcClientFinal, wantFinal: rfcServerFinal},
		{name: "wrong proof", keys: keys, wantCode: CodeInvalidPassword,
			clientFinal: strings.Replace(rfcClientFinal, "p=dHzb", "p=dHzc", 1)},
		{name: "doomed despite right proof", keys: keys, doomed: true, clientFinal: rfcClientFinal, wantCode: CodeInvalidPassword},
		{name: "nonce mismatch", keys: keys, wantCode: CodeProtocolViolation,
			clientFinal: strings.Replace(rfcClientFinal, "hNlF$k0", "hNlF$k1", 1)},
		{name: "binding flag changed", keys: keys, wantCode: CodeProtocolViolation,
			clientFinal: strings.Replace(rfcClientFinal, "c=biws", "c=eSws", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scramServer{user: "user", keys: tt.keys, doomed: tt.doomed, serverNonce: rfcServerNonce}
			first, e := s.first([]byte(rfcClientFirst))
			if e != nil {
				t.Fatalf("first: %v", e)
			}
			if first != rfcServerFirst {
				t.Fatalf("server-first = %q, want %q", first, rfcServerFirst)
			}
			final, e := s.final([]byte(tt.clientFinal))
			if tt.wantCode != "" {
				if e == nil || e.Code != tt.wantCode {
					t.Fatalf("final error = %v, want SQLSTATE %s", e, tt.wantCode)
				}
				return
			}
			if e != nil {
				t.Fatalf("final: %v", e)
			}
			if final != tt.wantFinal {
				t.Fatalf("server-final = %q, want %q", final, tt.wantFinal)
			}
		})
	}
}

func TestParseClientFirst(t *testing.T) {
	tests := []struct {
		in        string
		wantNonce string
		wantBare  string
		wantCode  string
		wantMsg   string // Message, or Detail for malformed SCRAM messages
	}{
		{in: "n,,n=,r=abc", wantNonce: "abc", wantBare: "n=,r=abc"},
		{in: "y,,n=user,r=abc", wantNonce: "abc", wantBare: "n=user,r=abc"},
		{in: "n,,n=,r=abc,x=ext,y=1", wantNonce: "abc", wantBare: "n=,r=abc,x=ext,y=1"},
		{in: "n,,n=,r=", wantNonce: "", wantBare: "n=,r="},
		{in: "", wantCode: CodeProtocolViolation, wantMsg: "The message is empty."},
		{in: "n,,n=,r=a\x00b", wantCode: CodeProtocolViolation, wantMsg: "Message length does not match input length."},
		{in: "p=tls-server-end-point,,n=,r=abc", wantCode: CodeProtocolViolation,
			wantMsg: "The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data."},
		{in: "x,,n=,r=abc", wantCode: CodeProtocolViolation, wantMsg: `Unexpected channel-binding flag "'x'".`},
		{in: "n;,n=,r=abc", wantCode: CodeProtocolViolation, wantMsg: `Comma expected, but found character "';'".`},
		{in: "n", wantCode: CodeProtocolViolation, wantMsg: `Comma expected, but found character "0x00".`},
		{in: "n,a=bob,n=,r=abc", wantCode: CodeFeatureNotSupported, wantMsg: "client uses authorization identity, but it is not supported"},
		{in: "n,b,n=,r=abc", wantCode: CodeProtocolViolation, wantMsg: `Unexpected attribute "'b'" in client-first-message.`},
		{in: "n,,m=ext,n=,r=abc", wantCode: CodeFeatureNotSupported, wantMsg: "client requires an unsupported SCRAM extension"},
		{in: "n,,r=abc", wantCode: CodeProtocolViolation, wantMsg: `Expected attribute "n" but found "'r'".`},
		{in: "n,,n", wantCode: CodeProtocolViolation, wantMsg: `Expected character "=" for attribute "n".`},
		{in: "n,,n=", wantCode: CodeProtocolViolation, wantMsg: `Expected attribute "r" but found "0x00".`},
		{in: "n,,n=,r=a b", wantCode: CodeProtocolViolation, wantMsg: "non-printable characters in SCRAM nonce"},
		{in: "n,,n=,r=abc,1=x", wantCode: CodeProtocolViolation, wantMsg: `Attribute expected, but found invalid character "'1'".`},
		{in: "n,,n=,r=abc,\xff=x", wantCode: CodeProtocolViolation, wantMsg: `Attribute expected, but found invalid character "0xff".`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			cf, e := parseClientFirst([]byte(tt.in))
			if tt.wantCode == "" {
				if e != nil {
					t.Fatalf("unexpected error %v", e)
				}
				if cf.nonce != tt.wantNonce || cf.bare != tt.wantBare {
					t.Fatalf("got nonce %q bare %q, want %q %q", cf.nonce, cf.bare, tt.wantNonce, tt.wantBare)
				}
				return
			}
			if e == nil {
				t.Fatalf("no error, want %s %q", tt.wantCode, tt.wantMsg)
			}
			got := e.Message
			if e.Message == "malformed SCRAM message" {
				got = e.Detail
			}
			if e.Code != tt.wantCode || got != tt.wantMsg {
				t.Fatalf("got %s %q, want %s %q", e.Code, got, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestParseClientFinal(t *testing.T) {
	proof := "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	tests := []struct {
		in       string
		flag     byte
		wantWO   string // client-final-message-without-proof
		wantCode string
		wantMsg  string
	}{
		{in: "c=biws,r=abc,p=" + proof, flag: 'n', wantWO: "c=biws,r=abc"},
		{in: "c=eSws,r=abc,p=" + proof, flag: 'y', wantWO: "c=eSws,r=abc"},
		{in: "c=biws,r=abc,x=1,p=" + proof, flag: 'n', wantWO: "c=biws,r=abc,x=1"},
		{in: "c=eSws,r=abc,p=" + proof, flag: 'n', wantCode: CodeProtocolViolation,
			wantMsg: "unexpected SCRAM channel-binding attribute in client-final-message"},
		{in: "r=abc,p=" + proof, flag: 'n', wantCode: CodeProtocolViolation, wantMsg: `Expected attribute "c" but found "'r'".`},
		{in: "c=biws,r=abc", flag: 'n', wantCode: CodeProtocolViolation, wantMsg: "Attribute expected, but found end of string."},
		{in: "c=biws,r=abc,p=AAAA", flag: 'n', wantCode: CodeProtocolViolation, wantMsg: "Malformed proof in client-final-message."},
		{in: "c=biws,r=abc,p=!!!", flag: 'n', wantCode: CodeProtocolViolation, wantMsg: "Malformed proof in client-final-message."},
		{in: "c=biws,r=abc,p=" + proof + ",z=1", flag: 'n', wantCode: CodeProtocolViolation,
			wantMsg: "Garbage found at the end of client-final-message."},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			cf, e := parseClientFinal([]byte(tt.in), tt.flag)
			if tt.wantCode == "" {
				if e != nil {
					t.Fatalf("unexpected error %v", e)
				}
				if cf.withoutProof != tt.wantWO || cf.nonce != "abc" || len(cf.proof) != scramKeyLen {
					t.Fatalf("got %+v", cf)
				}
				return
			}
			if e == nil {
				t.Fatalf("no error, want %s %q", tt.wantCode, tt.wantMsg)
			}
			got := e.Message
			if e.Message == "malformed SCRAM message" {
				got = e.Detail
			}
			if e.Code != tt.wantCode || got != tt.wantMsg {
				t.Fatalf("got %s %q, want %s %q", e.Code, got, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

// FuzzSCRAMMessages feeds arbitrary client bytes to both parsers: they must
// not panic, and what they accept must be consistent with the input.
func FuzzSCRAMMessages(f *testing.F) {
	f.Add([]byte(rfcClientFirst))
	f.Add([]byte(rfcClientFinal))
	f.Add([]byte("y,,n=,r=abc,x=1"))
	f.Add([]byte("p=tls-server-end-point,,n=,r=abc"))
	f.Add([]byte("c=eSws,r=abc,e=1,p=AAAA,"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		if cf, e := parseClientFirst(msg); e == nil {
			if !strings.HasSuffix(string(msg), cf.bare) || !scramPrintable(cf.nonce) {
				t.Fatalf("accepted %q as %+v", msg, cf)
			}
		}
		for _, flag := range []byte{'n', 'y'} {
			if cf, e := parseClientFinal(msg, flag); e == nil {
				if !strings.HasPrefix(string(msg), cf.withoutProof) || len(cf.proof) != scramKeyLen {
					t.Fatalf("accepted %q as %+v", msg, cf)
				}
			}
		}
	})
}

func BenchmarkSCRAMServerExchange(b *testing.B) {
	keys := rfcKeys(b)
	first, final := []byte(rfcClientFirst), []byte(rfcClientFinal)
	b.ReportAllocs()
	for b.Loop() {
		s := &scramServer{user: "user", keys: keys, serverNonce: rfcServerNonce}
		if _, e := s.first(first); e != nil {
			b.Fatal(e)
		}
		if _, e := s.final(final); e != nil {
			b.Fatal(e)
		}
	}
}
