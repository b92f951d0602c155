package proxy

import (
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgproto3"
)

// authConn is the auth exchange's connection (auth.Conn) over the
// session's own frame reader and client writer. A pgproto3.Backend would
// do, but it takes an 8 KiB read buffer per login that is garbage once the
// client is in: with thousands of clients logging in, that garbage is what
// the process's memory peaks on.
type authConn struct {
	s        *session
	authType uint32
	wbuf     []byte
	err      error // an encoding failure, reported by Flush
}

func (a *authConn) Send(msg pgproto3.BackendMessage) {
	if a.err != nil {
		return
	}
	b, err := msg.Encode(a.wbuf[:0])
	if err != nil {
		a.err = err
		return
	}
	a.wbuf = b
	a.s.cw.Write(b)
}

func (a *authConn) Flush() error {
	if err := a.err; err != nil {
		a.err = nil
		return err
	}
	return a.s.cw.Flush()
}

func (a *authConn) SetAuthType(t uint32) error {
	a.authType = t
	return nil
}

// Receive reads one message. Any type but 'p' is answered as pgproto3
// answers an unknown one; the exchange reports it as PostgreSQL does
// ("expected ... response, got message type N") without looking inside.
func (a *authConn) Receive() (pgproto3.FrontendMessage, error) {
	typ, frame, err := a.s.fr.next()
	if err != nil {
		var fe *frameError
		switch {
		case errors.As(err, &fe) && fe.size >= 4:
			return nil, &pgproto3.ExceededMaxBodyLenErr{MaxExpectedBodyLen: a.s.fr.max, ActualBodyLen: fe.size - 4}
		case errors.As(err, &fe):
			return nil, fmt.Errorf("invalid message length: %d", fe.size)
		case err == io.EOF:
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if typ != 'p' {
		return nil, fmt.Errorf("unknown message type: %c", typ)
	}
	var msg pgproto3.FrontendMessage
	switch a.authType {
	case pgproto3.AuthTypeSASL:
		msg = &pgproto3.SASLInitialResponse{}
	case pgproto3.AuthTypeSASLContinue, pgproto3.AuthTypeSASLFinal:
		msg = &pgproto3.SASLResponse{}
	case pgproto3.AuthTypeGSS, pgproto3.AuthTypeGSSCont:
		msg = &pgproto3.GSSResponse{}
	default:
		msg = &pgproto3.PasswordMessage{}
	}
	if err := msg.Decode(body(frame)); err != nil {
		return nil, err
	}
	return msg, nil
}
