package auth

import (
	"errors"

	"github.com/jackc/pgx/v5/pgproto3"
)

// SQLSTATE codes used by PostgreSQL's authentication code (errcodes.txt).
const (
	// CodeInvalidPassword is invalid_password, which PostgreSQL's auth_failed
	// reports for every password-based failure, wrong password and unknown
	// user alike.
	CodeInvalidPassword = "28P01"
	// CodeProtocolViolation is protocol_violation: the client broke the
	// authentication exchange.
	CodeProtocolViolation = "08P01"
	// CodeFeatureNotSupported is feature_not_supported: a SCRAM authzid or
	// mandatory extension (auth-scram.c rejects both).
	CodeFeatureNotSupported = "0A000"
	// CodeInternalError is internal_error: a bug or a misconfiguration on
	// our side, never the client's doing.
	CodeInternalError = "XX000"
)

// ErrDisconnected is wrapped by the error Authenticate returns when the
// client went away (or the read failed) mid-exchange. psql does this on
// purpose: it disconnects at the password challenge, prompts, and reconnects.
// Nothing should be sent back and the attempt is not a failed login.
var ErrDisconnected = errors.New("auth: client disconnected during authentication")

// Error is an authentication failure the client must be told about. The
// caller turns it into an ErrorResponse (see ErrorResponse) and closes the
// connection, as PostgreSQL's auth_failed does with a FATAL ereport.
type Error struct {
	Severity string // always "FATAL": authentication errors end the session
	Code     string // SQLSTATE
	Message  string
	Detail   string // sent to the client, like errdetail
	// LogDetail says why, for the proxy's log only (PostgreSQL's logdetail):
	// the client sees the same message for an unknown user and a wrong
	// password, the operator should not have to guess.
	LogDetail string
}

func (e *Error) Error() string {
	s := e.Severity + ": " + e.Message + " (SQLSTATE " + e.Code + ")"
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// SQLState returns the SQLSTATE, the same accessor pgconn.PgError has.
func (e *Error) SQLState() string { return e.Code }

// ErrorResponse is the message to send to the client. It is a new value the
// caller owns.
func (e *Error) ErrorResponse() *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{
		Severity:            e.Severity,
		SeverityUnlocalized: e.Severity,
		Code:                e.Code,
		Message:             e.Message,
		Detail:              e.Detail,
	}
}

// IsAuthFailure reports whether err is a rejected login (wrong password,
// unknown user, no usable secret), as opposed to a protocol violation or a
// disconnect. Rate limiting and the failed-login metric key on this.
func IsAuthFailure(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == CodeInvalidPassword
}

// authFailed is auth.c's auth_failed message for the password methods.
func authFailed(user, logDetail string) *Error {
	return &Error{
		Severity:  "FATAL",
		Code:      CodeInvalidPassword,
		Message:   `password authentication failed for user "` + user + `"`,
		LogDetail: logDetail,
	}
}

func protocolViolation(msg, detail string) *Error {
	return &Error{Severity: "FATAL", Code: CodeProtocolViolation, Message: msg, Detail: detail}
}

// malformedSCRAM is auth-scram.c's "malformed SCRAM message" with its
// errdetail.
func malformedSCRAM(detail string) *Error {
	return protocolViolation("malformed SCRAM message", detail)
}
