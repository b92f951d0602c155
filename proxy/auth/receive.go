package auth

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgproto3"
)

// receive reads the client's answer to a challenge. authType tells pgproto3
// how to decode a 'p' message (SASLInitialResponse, SASLResponse or
// PasswordMessage all share that type byte). Any other message is the
// protocol violation PostgreSQL reports as "expected <what> response, got
// message type N".
func receive(be Conn, authType uint32, what string) (pgproto3.FrontendMessage, error) {
	if err := be.SetAuthType(authType); err != nil {
		panic("BUG: " + err.Error())
	}
	msg, err := be.Receive()
	if err != nil {
		return nil, receiveError(err, what)
	}
	if t := messageType(msg); t != 'p' {
		return nil, protocolViolation(fmt.Sprintf("expected %s response, got message type %d", what, t), "")
	}
	return msg, nil
}

// receiveError sorts a failed read into "the client is gone" (nothing to
// send) and "the client sent garbage" (tell it, then close).
func receiveError(err error, what string) error {
	var netErr net.Error
	var tooLong *pgproto3.ExceededMaxBodyLenErr
	switch {
	// pgproto3 turns every EOF while reading into io.ErrUnexpectedEOF; a
	// bare io.EOF comes from decoding a body, e.g. a password without its
	// terminating zero byte.
	case errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &netErr),
		errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrClosedPipe):
		return disconnected(err)
	case errors.Is(err, io.EOF):
		return protocolViolation("invalid password packet size", "")
	case errors.As(err, &tooLong):
		return protocolViolation("invalid message length", "")
	}
	if t, ok := strings.CutPrefix(err.Error(), "unknown message type: "); ok {
		// pgproto3 formats the type byte with %c.
		if r, n := utf8.DecodeRuneInString(t); n == len(t) && r <= 0xFF {
			return protocolViolation(fmt.Sprintf("expected %s response, got message type %d", what, r), "")
		}
	}
	return protocolViolation("invalid "+what+" response message", err.Error())
}

func disconnected(err error) error {
	return fmt.Errorf("%w: %w", ErrDisconnected, err)
}

// messageType is the wire type byte of a decoded frontend message.
func messageType(msg pgproto3.FrontendMessage) byte {
	switch msg.(type) {
	case *pgproto3.PasswordMessage, *pgproto3.SASLInitialResponse, *pgproto3.SASLResponse, *pgproto3.GSSResponse:
		return 'p'
	}
	b, err := msg.Encode(nil)
	if err != nil || len(b) == 0 {
		return 0
	}
	return b[0]
}
