package cache_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// rawConn speaks the protocol message by message (pgproto3 over a hijacked
// pgconn), so tests see exactly the frames Sluice or PostgreSQL sent.
type rawConn struct {
	t    *testing.T
	fe   *pgproto3.Frontend
	conn net.Conn
}

func rawConnect(t *testing.T, dsn string) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pc, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	h, err := pc.Hijack()
	if err != nil {
		t.Fatalf("hijack: %v", err)
	}
	r := &rawConn{t: t, fe: h.Frontend, conn: h.Conn}
	t.Cleanup(func() {
		r.fe.Send(&pgproto3.Terminate{})
		_ = r.fe.Flush()
		_ = r.conn.Close()
	})
	return r
}

// wire is the messages of one answer, each re-encoded to its bytes, up to
// and including ReadyForQuery.
type wire [][]byte

// String shows message types and sizes, for failure messages.
func (w wire) String() string {
	s := ""
	for _, m := range w {
		s += fmt.Sprintf("%c(%d) ", m[0], len(m))
	}
	return s
}

func (w wire) equal(o wire) bool {
	if len(w) != len(o) {
		return false
	}
	for i := range w {
		if string(w[i]) != string(o[i]) {
			return false
		}
	}
	return true
}

// firstDiff describes the first differing message.
func (w wire) firstDiff(o wire) string {
	for i := 0; i < len(w) && i < len(o); i++ {
		if string(w[i]) != string(o[i]) {
			return fmt.Sprintf("message %d: %q vs %q", i, w[i], o[i])
		}
	}
	return fmt.Sprintf("lengths %d vs %d: %v vs %v", len(w), len(o), w, o)
}

// readUntilReady collects messages up to ReadyForQuery; an ErrorResponse
// fails the test unless allowErr.
func (r *rawConn) readUntilReady(allowErr bool) wire {
	r.t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	var out wire
	for {
		msg, err := r.fe.Receive()
		if err != nil {
			r.t.Fatalf("receive: %v (so far %v)", err, out)
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); ok && !allowErr {
			r.t.Fatalf("server error: %s %s", e.Code, e.Message)
		}
		if _, ok := msg.(*pgproto3.ParameterStatus); ok {
			continue // reported settings are not part of a statement's answer
		}
		b, err := msg.(pgproto3.BackendMessage).Encode(nil)
		if err != nil {
			r.t.Fatalf("encode %T: %v", msg, err)
		}
		out = append(out, b)
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			return out
		}
	}
}

func (r *rawConn) flush() {
	r.t.Helper()
	if err := r.fe.Flush(); err != nil {
		r.t.Fatalf("flush: %v", err)
	}
}

// simple runs a simple Query.
func (r *rawConn) simple(sql string) wire {
	r.t.Helper()
	r.fe.Send(&pgproto3.Query{String: sql})
	r.flush()
	return r.readUntilReady(false)
}

// execUnit is one Parse/Bind/Describe portal/Execute of a batch.
type execUnit struct {
	sql           string
	params        [][]byte
	resultFormats []int16
	maxRows       uint32
}

// extended sends the units (unnamed statement and portal) in one Sync.
func (r *rawConn) extended(units ...execUnit) wire {
	r.t.Helper()
	for _, u := range units {
		r.fe.Send(&pgproto3.Parse{Query: u.sql})
		r.fe.Send(&pgproto3.Bind{Parameters: u.params, ResultFormatCodes: u.resultFormats})
		r.fe.Send(&pgproto3.Describe{ObjectType: 'P'})
		r.fe.Send(&pgproto3.Execute{MaxRows: u.maxRows})
	}
	r.fe.Send(&pgproto3.Sync{})
	r.flush()
	return r.readUntilReady(false)
}
