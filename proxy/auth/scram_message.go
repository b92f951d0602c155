package auth

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// The SCRAM message parsers follow read_client_first_message and
// read_client_final_message in PostgreSQL's auth-scram.c step by step, so a
// malformed message is rejected where, and with the words, PostgreSQL would
// reject it. They take untrusted client bytes: they must never panic (see
// FuzzSCRAMMessages) and never echo non-ASCII input in an error.

// clientFirst is the decoded client-first-message.
type clientFirst struct {
	cbindFlag byte   // 'n' or 'y' (we never offer channel binding)
	bare      string // client-first-message-bare, part of AuthMessage
	nonce     string // c-nonce
}

// clientFinal is the decoded client-final-message.
type clientFinal struct {
	nonce        string // c-nonce + s-nonce as echoed by the client
	proof        []byte // ClientProof, scramKeyLen bytes
	withoutProof string // client-final-message-without-proof, part of AuthMessage
}

// scramReader walks a message attribute by attribute, like the pointer
// juggling of read_attr_value and read_any_attr.
type scramReader struct {
	s   string
	pos int
}

func (r *scramReader) cur() byte {
	if r.pos < len(r.s) {
		return r.s[r.pos]
	}
	return 0
}

func (r *scramReader) done() bool { return r.pos >= len(r.s) }

// value reads up to the next comma and steps over it.
func (r *scramReader) value() string {
	end := strings.IndexByte(r.s[r.pos:], ',')
	if end < 0 {
		v := r.s[r.pos:]
		r.pos = len(r.s)
		return v
	}
	v := r.s[r.pos : r.pos+end]
	r.pos += end + 1
	return v
}

// attr is read_attr_value: the attribute must be want.
func (r *scramReader) attr(want byte) (string, *Error) {
	if c := r.cur(); c != want {
		return "", malformedSCRAM(fmt.Sprintf("Expected attribute \"%c\" but found \"%s\".", want, sanitizeChar(c)))
	}
	r.pos++
	if r.cur() != '=' {
		return "", malformedSCRAM(fmt.Sprintf("Expected character \"=\" for attribute \"%c\".", want))
	}
	r.pos++
	return r.value(), nil
}

// anyAttr is read_any_attr: attr-val = ALPHA "=" value.
func (r *scramReader) anyAttr() (byte, string, *Error) {
	c := r.cur()
	if r.done() {
		return 0, "", malformedSCRAM("Attribute expected, but found end of string.")
	}
	if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
		return 0, "", malformedSCRAM(fmt.Sprintf("Attribute expected, but found invalid character \"%s\".", sanitizeChar(c)))
	}
	r.pos++
	if r.cur() != '=' {
		return 0, "", malformedSCRAM(fmt.Sprintf("Expected character \"=\" for attribute \"%c\".", c))
	}
	r.pos++
	return c, r.value(), nil
}

// checkSCRAMInput is scram_exchange's guard on the raw payload.
func checkSCRAMInput(msg []byte) *Error {
	if len(msg) == 0 {
		return malformedSCRAM("The message is empty.")
	}
	for _, b := range msg {
		if b == 0 {
			return malformedSCRAM("Message length does not match input length.")
		}
	}
	return nil
}

// parseClientFirst parses "gs2-header client-first-message-bare", e.g.
// "n,,n=,r=fyko+d2lbbFgONRv9qkxdawL". We advertise SCRAM-SHA-256 only, so
// the flag must be 'n' (no binding) or 'y' (client could bind but thinks
// we cannot, which is true); 'p' is an error as in PostgreSQL without TLS.
func parseClientFirst(msg []byte) (clientFirst, *Error) {
	if e := checkSCRAMInput(msg); e != nil {
		return clientFirst{}, e
	}
	r := &scramReader{s: string(msg)}
	var cf clientFirst
	cf.cbindFlag = r.cur()
	switch cf.cbindFlag {
	case 'n', 'y':
		r.pos++
		if c := r.cur(); c != ',' {
			return clientFirst{}, malformedSCRAM(fmt.Sprintf("Comma expected, but found character \"%s\".", sanitizeChar(c)))
		}
		r.pos++
	case 'p':
		return clientFirst{}, malformedSCRAM("The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data.")
	default:
		return clientFirst{}, malformedSCRAM(fmt.Sprintf("Unexpected channel-binding flag \"%s\".", sanitizeChar(cf.cbindFlag)))
	}

	switch c := r.cur(); {
	case c == 'a':
		return clientFirst{}, &Error{Severity: "FATAL", Code: CodeFeatureNotSupported,
			Message: "client uses authorization identity, but it is not supported"}
	case c != ',':
		return clientFirst{}, malformedSCRAM(fmt.Sprintf("Unexpected attribute \"%s\" in client-first-message.", sanitizeChar(c)))
	}
	r.pos++
	cf.bare = r.s[r.pos:]

	if r.cur() == 'm' {
		return clientFirst{}, &Error{Severity: "FATAL", Code: CodeFeatureNotSupported,
			Message: "client requires an unsupported SCRAM extension"}
	}
	// The user name is ignored: the startup message's user is the one that
	// counts, and libpq sends an empty one.
	if _, e := r.attr('n'); e != nil {
		return clientFirst{}, e
	}
	nonce, e := r.attr('r')
	if e != nil {
		return clientFirst{}, e
	}
	if !scramPrintable(nonce) {
		return clientFirst{}, protocolViolation("non-printable characters in SCRAM nonce", "")
	}
	cf.nonce = nonce
	for !r.done() { // optional extensions, ignored
		if _, _, e := r.anyAttr(); e != nil {
			return clientFirst{}, e
		}
	}
	return cf, nil
}

// parseClientFinal parses "c=biws,r=<nonce>[,ext...],p=<proof>". The
// channel-binding attribute must repeat the first message's gs2 header:
// "biws" is base64("n,,"), "eSws" is base64("y,,").
func parseClientFinal(msg []byte, cbindFlag byte) (clientFinal, *Error) {
	if e := checkSCRAMInput(msg); e != nil {
		return clientFinal{}, e
	}
	r := &scramReader{s: string(msg)}
	cbind, e := r.attr('c')
	if e != nil {
		return clientFinal{}, e
	}
	if !(cbind == "biws" && cbindFlag == 'n') && !(cbind == "eSws" && cbindFlag == 'y') {
		return clientFinal{}, protocolViolation("unexpected SCRAM channel-binding attribute in client-final-message", "")
	}
	var cf clientFinal
	if cf.nonce, e = r.attr('r'); e != nil {
		return clientFinal{}, e
	}
	var proofAt int
	var value string
	for {
		proofAt = r.pos - 1 // the comma before the attribute
		var a byte
		if a, value, e = r.anyAttr(); e != nil {
			return clientFinal{}, e
		}
		if a == 'p' {
			break
		}
	}
	proof, err := base64.StdEncoding.DecodeString(value)
	if err != nil || len(proof) != scramKeyLen {
		return clientFinal{}, malformedSCRAM("Malformed proof in client-final-message.")
	}
	if !r.done() {
		return clientFinal{}, malformedSCRAM("Garbage found at the end of client-final-message.")
	}
	cf.proof = proof
	cf.withoutProof = r.s[:proofAt]
	return cf, nil
}

// scramPrintable is is_scram_printable: RFC 5802's printable, ASCII
// 0x21-0x7E except the comma.
func scramPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7E || c == ',' {
			return false
		}
	}
	return true
}

// sanitizeChar is auth-scram.c's sanitize_char: printable ASCII quoted,
// anything else in hex, so errors never carry client bytes verbatim.
func sanitizeChar(c byte) string {
	if c >= 0x21 && c <= 0x7E {
		return fmt.Sprintf("'%c'", c)
	}
	return fmt.Sprintf("0x%02x", c)
}
