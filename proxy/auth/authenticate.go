package auth

import (
	"errors"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Authenticate runs the server side of client authentication on be, after
// the StartupMessage, for user, whose stored secret is secret (found=false:
// no such user). It sends the challenges and reads the replies; the caller
// sends AuthenticationOk on success (a SCRAM AuthenticationSASLFinal is
// queued on be, unflushed, ahead of it), or turns the *Error into an
// ErrorResponse on failure. An error wrapping ErrDisconnected means the
// client left: send nothing.
//
// As PostgreSQL's ClientAuthentication does, an unknown user or a user
// without a usable secret gets a full mock exchange that fails with the
// same 28P01 "password authentication failed" as a wrong password:
//   - scram-sha-256: SCRAM with the deterministic mock salt; an md5 verifier
//     cannot do SCRAM, so its user gets the mock too.
//   - md5: the md5 challenge (a SCRAM verifier's user gets SCRAM instead,
//     like PostgreSQL). For an unknown user PostgreSQL picks the challenge of
//     its password_encryption; Sluice picks md5, the challenge its known
//     plaintext and md5 users get, so it blends in.
//   - password: read the password, then fail.
//   - trust: no exchange at all; user existence is the caller's business.
//
// be's decoded messages are only read here; nothing is kept past return.
func Authenticate(be Conn, method Method, user string, secret Secret, found bool) error {
	if !found {
		secret = Secret{}
	}
	var err error
	switch method {
	case MethodTrust:
		err = nil
	case MethodSCRAM:
		err = scramExchange(be, newSCRAMServer(user, secret, found))
	case MethodMD5:
		if secret.kind == secretSCRAM {
			err = scramExchange(be, newSCRAMServer(user, secret, found))
		} else {
			err = md5Exchange(be, user, secret.md5, missingDetail(user, found))
		}
	case MethodPassword:
		err = passwordExchange(be, user, secret, missingDetail(user, found))
	default:
		err = &Error{Severity: "FATAL", Code: CodeInternalError,
			Message: "unsupported authentication method", LogDetail: "method " + string(method)}
	}
	// Leave 'p' messages decoding as PasswordMessage, pgproto3's default.
	_ = be.SetAuthType(pgproto3.AuthTypeOk)
	observe(method, err)
	return err
}

func newSCRAMServer(user string, secret Secret, found bool) *scramServer {
	s := &scramServer{user: user, keys: secret.scram}
	if secret.kind != secretSCRAM && secret.kind != secretPlain {
		s.keys, s.doomed = mockKeys(user), true
		s.logDetail = missingDetail(user, found)
		if secret.kind == secretMD5 {
			s.logDetail = `User "` + user + `" does not have a valid SCRAM secret.`
		}
	}
	return s
}

// missingDetail is the operator-facing reason for a doomed exchange, in
// PostgreSQL's log wording.
func missingDetail(user string, found bool) string {
	if !found {
		return `Role "` + user + `" does not exist.`
	}
	return `User "` + user + `" has no password assigned.`
}

// outcome is the result label of the logins metric.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrDisconnected):
		return "aborted"
	case IsAuthFailure(err):
		return "failed"
	}
	return "error"
}

// Conn is the client connection an exchange runs on. *pgproto3.Backend is
// one; the proxy passes its own, over the session's reader and writer,
// rather than give each login a Backend and its read buffer.
type Conn interface {
	Send(msg pgproto3.BackendMessage)
	Flush() error
	// SetAuthType tells Receive how to decode a 'p' message.
	SetAuthType(authType uint32) error
	// Receive returns the client's next message, or an error as
	// pgproto3.Backend's Receive gives it.
	Receive() (pgproto3.FrontendMessage, error)
}
