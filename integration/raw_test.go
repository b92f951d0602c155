package integration

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// rawConn is a client that speaks the protocol by hand, to send what no
// driver would.
type rawConn struct {
	t    testing.TB
	conn net.Conn
	fe   *pgproto3.Frontend
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, conn: c, fe: pgproto3.NewFrontend(c, c)}
}

// write sends raw bytes.
func (r *rawConn) write(b []byte) {
	r.t.Helper()
	if _, err := r.conn.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// startup sends a StartupMessage with the given protocol version.
func (r *rawConn) startup(version uint32, params map[string]string) {
	r.t.Helper()
	b, err := (&pgproto3.StartupMessage{ProtocolVersion: version, Parameters: params}).Encode(nil)
	if err != nil {
		r.t.Fatal(err)
	}
	r.write(b)
}

// receive reads one backend message (nil, err at EOF).
func (r *rawConn) receive() (pgproto3.BackendMessage, error) {
	return r.fe.Receive()
}

// untilReady reads messages until ReadyForQuery and returns them; an
// ErrorResponse or EOF on the way is returned as the last message / error.
func (r *rawConn) untilReady() ([]pgproto3.BackendMessage, error) {
	var out []pgproto3.BackendMessage
	for {
		m, err := r.fe.Receive()
		if err != nil {
			return out, err
		}
		switch m := m.(type) {
		case *pgproto3.ErrorResponse:
			cp := *m
			out = append(out, &cp)
		case *pgproto3.NegotiateProtocolVersion:
			cp := *m
			cp.UnrecognizedOptions = append([]string(nil), m.UnrecognizedOptions...)
			out = append(out, &cp)
		case *pgproto3.BackendKeyData:
			cp := *m
			out = append(out, &cp)
		default:
			out = append(out, m)
		}
		if _, ok := m.(*pgproto3.ReadyForQuery); ok {
			return out, nil
		}
	}
}

// fatalThenClose reads until an ErrorResponse, checks its severity, code
// and (if not empty) message, then expects the server to close.
func (r *rawConn) fatalThenClose(code, msg string) {
	r.t.Helper()
	for {
		m, err := r.fe.Receive()
		if err != nil {
			r.t.Fatalf("connection ended (%v) before an ErrorResponse %s", err, code)
		}
		e, ok := m.(*pgproto3.ErrorResponse)
		if !ok {
			continue
		}
		if e.Severity != "FATAL" || e.Code != code || (msg != "" && e.Message != msg) {
			r.t.Fatalf("got %s %s %q, want FATAL %s %q", e.Severity, e.Code, e.Message, code, msg)
		}
		break
	}
	r.expectClosed()
}

// expectClosed checks that the server closes the connection.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	r.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [256]byte
	for {
		n, err := r.conn.Read(b[:])
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				r.t.Fatal("the server did not close the connection")
			}
			return
		}
		if n > 0 {
			r.t.Fatalf("unexpected bytes after the error: %q", b[:n])
		}
	}
}

// rawCancel sends a CancelRequest for (pid, key) to addr.
func rawCancel(addr string, pid uint32, key []byte) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	b := binary.BigEndian.AppendUint32(nil, uint32(12+len(key)))
	b = binary.BigEndian.AppendUint32(b, 80877102)
	b = binary.BigEndian.AppendUint32(b, pid)
	b = append(b, key...)
	if _, err := c.Write(b); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var one [1]byte
	c.Read(one[:]) // the server closes when done
	return nil
}

// frame builds a typed message.
func frame(typ byte, body []byte) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)+4))
	return append(b, body...)
}
