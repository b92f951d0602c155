package proxy

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// SQLSTATE codes Sluice itself raises, named as in PostgreSQL's errcodes.txt.
const (
	codeProtocolViolation    = "08P01"
	codeConnectionFailure    = "08006"
	codeTooManyConnections   = "53300"
	codeInvalidAuthorization = "28000"
	codeInvalidCatalogName   = "3D000"
	codeFeatureNotSupported  = "0A000"
	codeQueryCanceled        = "57014"
	codeAdminShutdown        = "57P01"
	codeCannotConnectNow     = "57P03"
)

// pgError is an error the client sees as an ErrorResponse.
type pgError struct {
	Severity string // ERROR or FATAL
	Code     string
	Message  string
	Detail   string
	Hint     string
}

func (e *pgError) Error() string { return e.Severity + ": " + e.Message + " (SQLSTATE " + e.Code + ")" }

func fatal(code, msg string) *pgError { return &pgError{Severity: "FATAL", Code: code, Message: msg} }

// asPgError turns any error into what the client should see: a server's own
// error passes through unchanged (SQLSTATE for SQLSTATE), anything else is
// a connection failure.
func asPgError(err error) *pgError {
	var pe *pgError
	if errors.As(err, &pe) {
		return pe
	}
	var se *pgconn.PgError
	if errors.As(err, &se) {
		return &pgError{Severity: se.Severity, Code: se.Code, Message: se.Message, Detail: se.Detail, Hint: se.Hint}
	}
	return &pgError{Severity: "FATAL", Code: codeConnectionFailure, Message: "sluice: " + err.Error()}
}

// appendErrorResponse encodes e as an ErrorResponse.
func appendErrorResponse(dst []byte, e *pgError) []byte {
	msg := pgproto3.ErrorResponse{
		Severity:            e.Severity,
		SeverityUnlocalized: e.Severity,
		Code:                e.Code,
		Message:             e.Message,
		Detail:              e.Detail,
		Hint:                e.Hint,
	}
	out, _ := msg.Encode(dst)
	return out
}

// appendNotice encodes a NoticeResponse (severity NOTICE, SQLSTATE 01000).
func appendNotice(dst []byte, code, text string) []byte {
	msg := pgproto3.NoticeResponse{Severity: "NOTICE", SeverityUnlocalized: "NOTICE", Code: code, Message: text}
	out, _ := msg.Encode(dst)
	return out
}

// parseErrorFields extracts the SQLSTATE from an ErrorResponse body without
// allocating.
func errorCode(b []byte) string {
	for len(b) > 0 && b[0] != 0 {
		t := b[0]
		b = b[1:]
		i := 0
		for i < len(b) && b[i] != 0 {
			i++
		}
		if t == 'C' {
			return string(b[:i])
		}
		if i >= len(b) {
			return ""
		}
		b = b[i+1:]
	}
	return ""
}
