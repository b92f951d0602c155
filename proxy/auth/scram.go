package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strconv"

	"github.com/jackc/pgx/v5/pgproto3"
)

const (
	// scramMechanism is the only SASL mechanism advertised. No -PLUS:
	// channel binding needs the TLS certificate hash, which this package
	// does not see; a client that insists on binding fails against us as it
	// would against PostgreSQL without SSL.
	scramMechanism = "SCRAM-SHA-256"
	// scramRawNonceLen is SCRAM_RAW_NONCE_LEN: random bytes in the server
	// nonce before base64.
	scramRawNonceLen = 18
	// maxSASLMessageLen is PG_MAX_SASL_MESSAGE_LENGTH in auth-sasl.c.
	maxSASLMessageLen = 1024
)

// scramServer is one SCRAM-SHA-256 exchange, server side: scram_state in
// auth-scram.c. It only turns messages into messages; the caller moves them.
type scramServer struct {
	user      string
	keys      *scramKeys
	doomed    bool   // mock exchange: fail at the end whatever the proof
	logDetail string // why it is doomed, for the operator

	serverNonce string // set by tests for RFC vectors, else random
	cbindFlag   byte
	clientNonce string
	firstBare   string
	serverFirst string
}

// first handles the client-first-message and returns server-first-message.
func (s *scramServer) first(msg []byte) (string, *Error) {
	cf, e := parseClientFirst(msg)
	if e != nil {
		return "", e
	}
	s.cbindFlag, s.clientNonce, s.firstBare = cf.cbindFlag, cf.nonce, cf.bare
	if s.serverNonce == "" {
		raw := make([]byte, scramRawNonceLen)
		rand.Read(raw) // never fails (Go 1.24+)
		s.serverNonce = base64.StdEncoding.EncodeToString(raw)
	}
	s.serverFirst = "r=" + s.clientNonce + s.serverNonce + ",s=" + s.keys.saltB64 + ",i=" + strconv.Itoa(s.keys.iterations)
	return s.serverFirst, nil
}

// final handles the client-final-message. It returns server-final-message
// when the proof is right, and the wrong-password error otherwise. The
// proof is checked even for a doomed exchange, as PostgreSQL does, so a
// missing user takes as long as a wrong password.
func (s *scramServer) final(msg []byte) (string, *Error) {
	cf, e := parseClientFinal(msg, s.cbindFlag)
	if e != nil {
		return "", e
	}
	if cf.nonce != s.clientNonce+s.serverNonce {
		return "", protocolViolation("invalid SCRAM response", "Nonce does not match.")
	}
	authMessage := s.firstBare + "," + s.serverFirst + "," + cf.withoutProof

	// ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the client
	// knew the password iff H(ClientKey) == StoredKey.
	clientKey := hmacSHA256(s.keys.storedKey[:], authMessage)
	for i := range clientKey {
		clientKey[i] ^= cf.proof[i]
	}
	got := sha256.Sum256(clientKey)
	ok := subtle.ConstantTimeCompare(got[:], s.keys.storedKey[:]) == 1
	if !ok || s.doomed {
		detail := s.logDetail
		if detail == "" {
			detail = "SCRAM proof does not match"
		}
		return "", authFailed(s.user, detail)
	}
	sig := hmacSHA256(s.keys.serverKey[:], authMessage)
	return "v=" + base64.StdEncoding.EncodeToString(sig), nil
}

// scramExchange runs CheckSASLAuth with the SCRAM mechanism on be. On
// success AuthenticationSASLFinal is queued but not flushed: the caller
// sends AuthenticationOk next and flushes both at once.
func scramExchange(be Conn, s *scramServer) error {
	be.Send(&pgproto3.AuthenticationSASL{AuthMechanisms: []string{scramMechanism}})
	if err := be.Flush(); err != nil {
		return disconnected(err)
	}
	msg, err := receive(be, pgproto3.AuthTypeSASL, "SASL")
	if err != nil {
		return err
	}
	init, ok := msg.(*pgproto3.SASLInitialResponse)
	if !ok {
		return protocolViolation("expected SASL response, got message type 112", "")
	}
	if init.AuthMechanism != scramMechanism {
		return protocolViolation("client selected an invalid SASL authentication mechanism", "")
	}
	data := init.Data
	if len(data) > maxSASLMessageLen {
		return authFailed(s.user, "SASL message too long")
	}
	if len(data) == 0 {
		// No Initial Client Response (length -1; pgproto3 cannot tell it
		// from an empty one): send an empty challenge and read the
		// client-first-message from the next response, as scram_exchange.
		be.Send(&pgproto3.AuthenticationSASLContinue{})
		if err := be.Flush(); err != nil {
			return disconnected(err)
		}
		if data, err = receiveSASLResponse(be, s.user); err != nil {
			return err
		}
	}
	serverFirst, e := s.first(data)
	if e != nil {
		return e
	}
	be.Send(&pgproto3.AuthenticationSASLContinue{Data: []byte(serverFirst)})
	if err := be.Flush(); err != nil {
		return disconnected(err)
	}
	if data, err = receiveSASLResponse(be, s.user); err != nil {
		return err
	}
	serverFinal, e := s.final(data)
	if e != nil {
		return e
	}
	be.Send(&pgproto3.AuthenticationSASLFinal{Data: []byte(serverFinal)})
	return nil
}

func receiveSASLResponse(be Conn, user string) ([]byte, error) {
	msg, err := receive(be, pgproto3.AuthTypeSASLContinue, "SASL")
	if err != nil {
		return nil, err
	}
	resp, ok := msg.(*pgproto3.SASLResponse)
	if !ok {
		return nil, protocolViolation("expected SASL response, got message type 112", "")
	}
	if len(resp.Data) > maxSASLMessageLen {
		return nil, authFailed(user, "SASL message too long")
	}
	return resp.Data, nil
}

// verifySCRAMPlain is scram_verify_plain_password: a clear-text password
// checked against a SCRAM verifier by recomputing the ServerKey.
func verifySCRAMPlain(k *scramKeys, password string) bool {
	serverKey := hmacSHA256(saltedPassword(password, k.salt, k.iterations), "Server Key")
	return hmac.Equal(serverKey, k.serverKey[:])
}
